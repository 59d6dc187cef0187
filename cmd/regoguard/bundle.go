package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/policy"
	"github.com/regoguard/regoguard/prommetrics/prombundles"
)

// bundleOptions are the flags for policy delivered as OPA bundles, and for
// decision logs in OPA's format.
type bundleOptions struct {
	bundles      []string
	persistDir   string
	publicKey    string
	keyAlgorithm string
	token        string
	clientCert   string
	clientKey    string
	caCert       string
	pollMin      time.Duration
	pollMax      time.Duration
	longPoll     time.Duration
	logConsole   bool
	logURL       string
	logToken     string
	logQueue     int
	logFile      string
	logFileMax   int64
	logFileKeep  int
}

func (o *bundleOptions) register(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.bundles, "bundle", nil, "OPA bundle: a directory, a .tar.gz (opa build) or an http(s) URL of a bundle server (repeatable; disjoint roots)")
	fs.StringVar(&o.persistDir, "bundle-persist-dir", "", "keep the last good downloaded bundle here, to serve it after a restart while the server is down")
	fs.StringVar(&o.publicKey, "bundle-verification-key", "", "PEM public key (or HMAC secret) file: bundles must be signed with it")
	fs.StringVar(&o.keyAlgorithm, "bundle-verification-alg", "RS256", "signature algorithm of --bundle-verification-key")
	fs.StringVar(&o.token, "bundle-token", "", "bearer token for the bundle server (prefer the environment variable)")
	fs.StringVar(&o.clientCert, "bundle-client-cert", "", "PEM client certificate for mutual TLS with the bundle server")
	fs.StringVar(&o.clientKey, "bundle-client-key", "", "PEM key of --bundle-client-cert")
	fs.StringVar(&o.caCert, "bundle-ca-cert", "", "PEM CA certificates the bundle server's certificate is checked against")
	fs.DurationVar(&o.pollMin, "bundle-poll-min", 60*time.Second, "shortest wait between two checks of a remote bundle")
	fs.DurationVar(&o.pollMax, "bundle-poll-max", 120*time.Second, "longest wait between two checks of a remote bundle")
	fs.DurationVar(&o.longPoll, "bundle-long-poll", 0, "ask the bundle server to hold each check open this long (long polling)")
	fs.BoolVar(&o.logConsole, "decision-log-console", false, "write decision logs in OPA's format to the log")
	fs.StringVar(&o.logURL, "decision-log-url", "", "upload decision logs in OPA's format to this collector (POST <url>)")
	fs.StringVar(&o.logToken, "decision-log-token", "", "bearer token for the decision-log collector")
	fs.StringVar(&o.logFile, "decision-log-file", "", "append decision logs in OPA's format to this file, one JSON object per line (what check --replay reads)")
	fs.Int64Var(&o.logFileMax, "decision-log-file-max-bytes", bundles.DefaultFileMaxBytes, "rotate --decision-log-file when it would grow past this size")
	fs.IntVar(&o.logFileKeep, "decision-log-file-keep", bundles.DefaultFileKeep, "rotated decision-log files kept (FILE.1 ... FILE.N; 0: none)")
	fs.IntVar(&o.logQueue, "decision-log-queue", 10000, "decision-log events queued off the request path (0: log synchronously)")
}

// decisionLogger starts OPA's decision-log plugin when decision logs are
// asked for; nil otherwise.
func (o *bundleOptions) decisionLogger(ctx context.Context, logger *slog.Logger) (*bundles.DecisionLogger, error) {
	if !o.logConsole && o.logURL == "" && o.logFile == "" {
		return nil, nil
	}
	if o.logFileMax <= 0 || o.logFileKeep < 0 {
		return nil, configErrorf("--decision-log-file-max-bytes must be positive and --decision-log-file-keep not negative")
	}
	cfg := bundles.DecisionLogConfig{Console: o.logConsole, QueueSize: o.logQueue, Logger: logger,
		File: o.logFile, FileMaxBytes: o.logFileMax, FileKeep: o.logFileKeep}
	if o.logFileKeep == 0 {
		cfg.FileKeep = -1 // none kept: the library's zero is its default
	}
	if o.logURL != "" {
		u, err := url.Parse(o.logURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, configErrorf("--decision-log-url: %q is not an absolute http(s) URL", o.logURL)
		}
		cfg.Service = &bundles.Service{URL: u.Scheme + "://" + u.Host, BearerToken: o.logToken}
		cfg.Resource = u.EscapedPath()
	}
	d, err := bundles.NewDecisionLogger(ctx, cfg)
	if err != nil {
		return nil, configErrorf("decision logs: %w", err)
	}
	return d, nil
}

// manager sets up the bundles' activation into engine.
func (o *bundleOptions) manager(engine *policy.Engine, dl *bundles.DecisionLogger, reg prometheus.Registerer, logger *slog.Logger) (*bundles.Manager, error) {
	cfg := bundles.Config{Engine: engine, PersistDir: o.persistDir, DecisionLogger: dl, Logger: logger,
		Services: map[string]bundles.Service{}}
	if o.publicKey != "" {
		cfg.Keys = map[string]bundles.Key{"default": {Algorithm: o.keyAlgorithm, Key: o.publicKey}}
	}
	credentials := o.token != "" || o.clientCert != "" || o.caCert != ""
	for _, arg := range o.bundles {
		src := bundles.SourceFor(bundleName(arg), arg)
		if src.URL != "" {
			src.Polling = bundles.Polling{MinDelay: o.pollMin, MaxDelay: o.pollMax, LongPollingTimeout: o.longPoll}
			if credentials {
				// A service per server carries the credentials, as in an
				// OPA configuration file.
				u, err := url.Parse(src.URL)
				if err != nil {
					return nil, configErrorf("--bundle %q: %w", arg, err)
				}
				name := "bundles@" + u.Host
				cfg.Services[name] = bundles.Service{URL: u.Scheme + "://" + u.Host, BearerToken: o.token,
					ClientCertFile: o.clientCert, ClientKeyFile: o.clientKey, CACertFile: o.caCert}
				src.Service, src.URL = name, strings.TrimPrefix(u.RequestURI(), "/")
			}
		}
		if o.publicKey != "" {
			src.Signing = &bundles.Signing{KeyID: "default"}
		}
		cfg.Bundles = append(cfg.Bundles, src)
	}
	m, err := bundles.New(cfg)
	if err != nil {
		return nil, configErrorf("--bundle: %w", err)
	}
	if reg != nil {
		if err := reg.Register(prombundles.NewCollector(m)); err != nil {
			return nil, fmt.Errorf("bundle metrics: %w", err)
		}
	}
	return m, nil
}

// bundleName names a bundle after the last element of its path or URL,
// without its extension: what status, metrics and decision logs show.
func bundleName(arg string) string {
	p := arg
	if u, err := url.Parse(arg); err == nil && u.Host != "" {
		p = path.Clean(u.Path)
	}
	base := filepath.Base(p)
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".gz"), ".tar")
	if base == "." || base == "/" || base == "" {
		return fmt.Sprintf("bundle-%x", len(arg))
	}
	return base
}
