// Package bundles serves policy from OPA bundles in-process: it reads them
// from a directory or a .tar.gz file, downloads them from a bundle server or
// an OCI registry, verifies their signatures, and activates them into a
// [policy.Engine]; and it writes decision logs in OPA's format.
//
// Everything OPA already does is done by OPA's own packages: bundles are
// read by v1/bundle, downloaded by v1/download (ETag and If-None-Match,
// long polling, size limits) through the REST client of v1/plugins/rest
// (bearer tokens, client TLS and OPA's other credentials), and decision logs
// are batched, masked, dropped and uploaded by the decision-log plugin of
// v1/plugins/logs. What this package adds is the glue to the in-process
// engine:
//
//   - A [Manager] activates each new bundle revision off to the side and
//     swaps it in atomically. A bundle that is corrupt, not signed as
//     required, or does not compile is rejected with an error in
//     [Manager.Status] and the previous revision keeps serving. Several
//     bundles with disjoint manifest roots are merged into one policy.
//   - The last activated download is persisted (Config.PersistDir), written
//     atomically and verified again when read, so a restart while the bundle
//     server is down still serves the last policy.
//   - [Manager.Ready] is false until every bundle has been activated once;
//     until then the engine refuses to evaluate, so requests fail closed.
//   - [Manager.Status] and [Manager.Collector] report the active revision of
//     each bundle, the last activation and the last error.
//   - A [DecisionLogger] implements [policy.DecisionLogger] with OPA's
//     decision-log plugin, to the console, a remote collector or a rotated
//     file ([DecisionLogConfig].File).
//
// The package knows nothing of HTTP requests: the middleware evaluates the
// engine and hands each decision to a DecisionLogger.
package bundles
