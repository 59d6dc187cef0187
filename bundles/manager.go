package bundles

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/download"
	"github.com/open-policy-agent/opa/v1/plugins/rest"

	"github.com/regoguard/regoguard/policy"
)

// Manager reads, downloads, verifies and activates bundles into a
// [policy.Engine]. Every bundle is activated off to the side: a bundle that
// cannot be read, is not signed as required, or does not compile is
// rejected with an error in [Manager.Status], and the policy that was
// serving keeps serving.
//
// The policy is first activated once every configured bundle has been
// obtained (from its path, its persisted copy or its server): until then
// [Manager.Ready] is false and the engine refuses to evaluate
// ([policy.ErrNoPolicy]), so requests fail closed.
type Manager struct {
	engine  *policy.Engine
	logger  *slog.Logger
	dl      *DecisionLogger
	sources []*source

	mu     sync.Mutex // serialises activations; guards what follows and every source's status
	have   map[string]*bundle.Bundle
	ready  bool
	readyC chan struct{}

	started  bool // Start was called; guarded by mu
	polling  bool // the periodic downloaders were started; guarded by mu
	stopOnce sync.Once
}

// fetcher is what OPA's HTTP and OCI downloaders have in common.
type fetcher interface {
	Start(context.Context)
	Stop(context.Context)
	Trigger(context.Context) error
	SetCache(string)
}

// source is a configured bundle and what the Manager knows of it.
type source struct {
	Source
	read    ReadOptions
	persist string  // file the last activated download is kept in; "" for none
	remote  fetcher // nil for a local bundle
	manual  bool
	etag    string // ETag of the active download
	status  BundleStatus
}

// BundleStatus reports one bundle.
type BundleStatus struct {
	// Name is the bundle's name, and Location its path or URL.
	Name, Location string
	// Revision is the manifest revision being served; empty before the
	// bundle's first activation.
	Revision string
	// ETag is the ETag of the active download, for remote bundles.
	ETag string
	// FromDisk is true when the active revision was read from the persisted
	// copy because the server has not (yet) provided one.
	FromDisk bool
	// ActivatedAt is when the active revision was activated.
	ActivatedAt time.Time
	// LastCheckAt is the last time the server answered (200 or 304).
	LastCheckAt time.Time
	// LastError is the most recent error, cleared by the next successful
	// download, check or activation; LastErrorAt is when it happened.
	LastError   error
	LastErrorAt time.Time
	// Activations, Failures and NotModified count activations, failed
	// downloads or activations, and 304 Not Modified answers.
	Activations, Failures, NotModified int
}

// Status reports what a Manager serves.
type Status struct {
	// Ready is true once every bundle has been activated; it stays true.
	Ready bool
	// Revision is the revision of the policy the engine serves.
	Revision string
	// Bundles reports each bundle, in configuration order.
	Bundles []BundleStatus
}

// New checks cfg and prepares the bundles' readers and downloaders. Call
// [Manager.Start] to activate them.
func New(cfg Config) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "bundles")
	m := &Manager{
		engine: cfg.Engine,
		logger: logger,
		dl:     cfg.DecisionLogger,
		have:   map[string]*bundle.Bundle{},
		readyC: make(chan struct{}),
	}
	for _, src := range cfg.Bundles {
		vc, err := cfg.verification(src)
		if err != nil {
			return nil, err
		}
		s := &source{Source: src, read: ReadOptions{Verification: vc, SizeLimitBytes: src.SizeLimitBytes}}
		s.status.Name, s.status.Location = src.Name, src.Path
		if src.Path == "" {
			if err := m.prepareRemote(&cfg, s); err != nil {
				return nil, err
			}
		}
		m.sources = append(m.sources, s)
	}
	return m, nil
}

// prepareRemote builds OPA's REST client and downloader for a remote source.
func (m *Manager) prepareRemote(cfg *Config, s *source) error {
	svcName, svc, resource, err := cfg.remote(s.Source)
	if err != nil {
		return err
	}
	raw, err := svc.opaConfig(svcName)
	if err != nil {
		return err
	}
	olog := newOPALogger(m.logger).WithFields(map[string]any{"bundle": s.Name})
	client, err := rest.New(raw, nil, rest.Logger(olog))
	if err != nil {
		return fmt.Errorf("bundles: service %q: %w", svcName, err)
	}
	s.status.Location = strings.TrimSuffix(client.Config().URL, "/") + "/" + resource
	dcfg, err := s.Polling.downloadConfig()
	if err != nil {
		return fmt.Errorf("bundles: bundle %q: %w", s.Name, err)
	}
	s.manual = s.Polling.Manual
	if cfg.PersistDir != "" {
		s.persist = persistPath(cfg.PersistDir, s.Name)
	}
	callback := func(ctx context.Context, u download.Update) error { return m.onUpdate(ctx, s, u) }
	popts := ast.ParserOptions{RegoVersion: parserRegoVersion, ProcessAnnotation: true}
	if strings.EqualFold(svc.Type, "oci") {
		store := ""
		if cfg.PersistDir != "" {
			store = filepath.Join(cfg.PersistDir, "oci")
		}
		d := download.NewOCI(dcfg, client, resource, store).
			WithCallback(callback).
			WithBundleVerificationConfig(s.read.Verification).
			WithBundlePersistence(s.persist != "").
			WithBundleParserOpts(popts)
		if s.SizeLimitBytes > 0 {
			d = d.WithSizeLimitBytes(s.SizeLimitBytes)
		}
		s.remote = d
		return nil
	}
	d := download.New(dcfg, client, resource).
		WithCallback(callback).
		WithBundleVerificationConfig(s.read.Verification).
		WithBundlePersistence(s.persist != "").
		WithBundleName(s.Name).
		WithBundleParserOpts(popts)
	if s.SizeLimitBytes > 0 {
		d = d.WithSizeLimitBytes(s.SizeLimitBytes)
	}
	s.remote = d
	return nil
}

// Start reads the local bundles and the persisted copies of remote ones,
// activates them together once every bundle is at hand, and starts polling
// the remote ones in the background (except those with Polling.Manual).
// It returns the errors of local or persisted bundles that could not be
// read or activated; the Manager keeps running regardless, so a caller may
// treat them as fatal or carry on (remote bundles may still arrive).
func (m *Manager) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return errors.New("bundles: Manager already started")
	}
	m.started = true
	m.mu.Unlock()
	var errs []error
	for _, s := range m.sources {
		var b *bundle.Bundle
		var err error
		switch {
		case s.remote == nil:
			b, err = ReadFile(s.Path, s.read)
		case s.persist != "":
			b, err = loadPersisted(s.persist, s.read)
		}
		if err != nil {
			m.fail(ctx, s, err)
			errs = append(errs, err)
			continue
		}
		if b != nil {
			if err := m.activate(ctx, s, b, s.remote != nil); err != nil {
				errs = append(errs, err)
			}
		}
	}
	m.mu.Lock()
	for _, s := range m.sources {
		if s.remote != nil && !s.manual {
			s.remote.Start(ctx)
		}
	}
	m.polling = true
	m.mu.Unlock()
	return errors.Join(errs...)
}

// Trigger re-reads local bundles and downloads remote bundles that have
// Polling.Manual set, and waits for the results. Remote bundles that poll
// by themselves are left to their polling.
func (m *Manager) Trigger(ctx context.Context) error {
	var errs []error
	for _, s := range m.sources {
		switch {
		case s.remote == nil:
			b, err := ReadFile(s.Path, s.read)
			if err != nil {
				m.fail(ctx, s, err)
				errs = append(errs, err)
				continue
			}
			if err := m.activate(ctx, s, b, false); err != nil {
				errs = append(errs, err)
			}
		case s.manual:
			if err := s.remote.Trigger(ctx); err != nil {
				// The downloader joins its error with the callback's, which
				// already says the same with the bundle's name: report it once.
				m.mu.Lock()
				last := s.status.LastError
				m.mu.Unlock()
				if last == nil || ctx.Err() != nil {
					last = fmt.Errorf("bundles: bundle %q: %w", s.Name, err)
				}
				errs = append(errs, last)
			}
		}
	}
	return errors.Join(errs...)
}

// Stop stops polling and removes the OCI downloader's temporary store.
// The active policy keeps serving. It does not stop Config.DecisionLogger.
func (m *Manager) Stop(ctx context.Context) {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		started := m.polling
		m.mu.Unlock()
		for _, s := range m.sources {
			// OPA's periodic downloaders wait for their loop to answer a
			// stop: stopping one that never started would block.
			if s.remote != nil && (s.manual || started) {
				s.remote.Stop(ctx)
			}
		}
	})
}

// onUpdate is called by OPA's downloader after every request.
func (m *Manager) onUpdate(ctx context.Context, s *source, u download.Update) error {
	if u.Error != nil {
		err := fmt.Errorf("bundles: bundle %q: download: %w", s.Name, u.Error)
		m.fail(ctx, s, err)
		// As OPA's bundle plugin does: keep asking with the ETag of the
		// bundle being served, so a rejected bundle is fetched again.
		s.remote.SetCache(m.activeETag(s))
		return err
	}
	if u.Bundle == nil {
		m.mu.Lock()
		s.status.LastCheckAt = time.Now()
		s.status.NotModified++
		s.status.LastError = nil
		m.mu.Unlock()
		m.logger.DebugContext(ctx, "bundle not modified", "bundle", s.Name, "etag", u.ETag)
		return nil
	}
	if err := check(u.Bundle); err != nil {
		err = fmt.Errorf("bundles: bundle %q: %w", s.Name, err)
		m.fail(ctx, s, err)
		s.remote.SetCache(m.activeETag(s))
		return err
	}
	m.mu.Lock()
	s.status.LastCheckAt = time.Now()
	m.mu.Unlock()
	if err := m.activate(ctx, s, u.Bundle, false); err != nil {
		s.remote.SetCache(m.activeETag(s))
		return err
	}
	m.mu.Lock()
	s.etag, s.status.ETag = u.ETag, u.ETag
	m.mu.Unlock()
	if s.persist != "" && u.Raw != nil {
		if err := saveAtomically(s.persist, u.Raw); err != nil {
			// The bundle is active; only a restart with the server down
			// would miss it.
			m.logger.ErrorContext(ctx, "persisting bundle failed", "bundle", s.Name, "error", err)
		}
	}
	return nil
}

func (m *Manager) activeETag(s *source) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return s.etag
}

// fail records err against s, in the Manager's and the engine's status.
func (m *Manager) fail(ctx context.Context, s *source, err error) {
	m.mu.Lock()
	s.status.LastError, s.status.LastErrorAt = err, time.Now()
	s.status.Failures++
	m.mu.Unlock()
	m.engine.RecordFailure(err)
	m.logger.ErrorContext(ctx, "bundle rejected; the active policy keeps serving",
		"bundle", s.Name, "error", err, "revision", m.engine.Revision())
}

// activate makes b the bundle s serves: once every bundle is at hand it
// compiles them together into the engine off to the side. On error nothing
// changes.
func (m *Manager) activate(ctx context.Context, s *source, b *bundle.Bundle, fromDisk bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := maps.Clone(m.have)
	next[s.Name] = b
	if len(next) < len(m.sources) {
		// Wait for the other bundles: a partial set would serve a partial
		// policy, or fail to define the decision at all.
		m.have = next
		s.status.FromDisk = fromDisk
		m.logger.InfoContext(ctx, "bundle read; waiting for the other bundles before activating",
			"bundle", s.Name, "revision", b.Manifest.Revision)
		return nil
	}
	err := m.load(ctx, next)
	if err != nil {
		err = fmt.Errorf("bundles: bundle %q revision %q: %w", s.Name, b.Manifest.Revision, err)
		s.status.LastError, s.status.LastErrorAt = err, time.Now()
		s.status.Failures++
		m.logger.ErrorContext(ctx, "bundle rejected; the active policy keeps serving",
			"bundle", s.Name, "error", err, "revision", m.engine.Revision())
		return err
	}
	now := time.Now()
	first := !m.ready
	m.have = next
	for _, o := range m.sources {
		if o == s || first {
			o.status.Revision = next[o.Name].Manifest.Revision
			o.status.ActivatedAt = now
			o.status.LastError = nil
			o.status.Activations++
		}
	}
	s.status.FromDisk = fromDisk
	if !m.ready {
		m.ready = true
		close(m.readyC)
	}
	m.logger.InfoContext(ctx, "bundle activated", "bundle", s.Name,
		"revision", b.Manifest.Revision, "policy_revision", m.engine.Revision())
	return nil
}

// load compiles the bundles into the engine and hands the policy to the
// decision logger.
func (m *Manager) load(ctx context.Context, bs map[string]*bundle.Bundle) error {
	p, err := ToPolicy(bs)
	if err != nil {
		m.engine.RecordFailure(err)
		return err
	}
	if err := m.engine.Load(ctx, p); err != nil {
		return err
	}
	if m.dl != nil {
		if err := m.dl.UsePolicy(ctx, p); err != nil {
			m.logger.ErrorContext(ctx, "decision logger could not use the new policy; masking and drop rules may be stale",
				"error", err)
		}
	}
	return nil
}

// Ready reports whether every bundle has been activated at least once. It
// is false until then, and the engine refuses to evaluate.
func (m *Manager) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ready
}

// Check is the readiness check: nil once every bundle has been activated,
// otherwise an error naming the bundles still missing and their last
// errors, for a health endpoint to show.
func (m *Manager) Check() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready {
		return nil
	}
	var missing []string
	var errs []error
	for _, s := range m.sources {
		if _, ok := m.have[s.Name]; !ok {
			missing = append(missing, s.Name)
		}
		if s.status.LastError != nil {
			errs = append(errs, s.status.LastError)
		}
	}
	err := fmt.Errorf("bundles: not ready: waiting for %s", strings.Join(missing, ", "))
	if len(missing) == 0 {
		err = errors.New("bundles: not ready: the bundles have not been activated together")
	}
	return errors.Join(append([]error{err}, errs...)...)
}

// WaitReady waits until [Manager.Ready] or ctx is done.
func (m *Manager) WaitReady(ctx context.Context) error {
	select {
	case <-m.readyC:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("bundles: not ready: %w", errors.Join(ctx.Err(), m.lastErrors()))
	}
}

func (m *Manager) lastErrors() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, s := range m.sources {
		if s.status.LastError != nil {
			errs = append(errs, s.status.LastError)
		}
	}
	return errors.Join(errs...)
}

// Status reports the active revision of every bundle, when it was
// activated and the last error.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{Ready: m.ready, Revision: m.engine.Revision(), Bundles: make([]BundleStatus, len(m.sources))}
	for i, s := range m.sources {
		st.Bundles[i] = s.status
	}
	return st
}
