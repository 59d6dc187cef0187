package bundles

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/server"
	"github.com/open-policy-agent/opa/v1/server/types"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/regoguard/regoguard/policy"
)

// DecisionLogConfig configures a [DecisionLogger]. At least one of Console,
// Service and File must be set.
type DecisionLogConfig struct {
	// Console writes every event to Logger at info level, as OPA's
	// "console": true does.
	Console bool
	// Service, when set, is the remote collector events are uploaded to, in
	// gzip-compressed JSON batches (OPA's decision log API).
	Service *Service
	// File, when set, is a file events are appended to, one JSON object
	// (OPA's EventV1, masked and dropped as for an upload) per line. It is
	// rotated when it would grow past FileMaxBytes (default 100 MiB) to
	// File.1 … File.<FileKeep> (default 3; a negative FileKeep keeps none),
	// flushed every second, and flushed and fsynced by [DecisionLogger.Stop].
	File         string
	FileMaxBytes int64
	FileKeep     int
	// Resource is the upload path on Service. Default "/logs".
	Resource string
	// MinDelay and MaxDelay bound the random wait between two uploads
	// (defaults 300s and 600s, OPA's). OPA counts them in whole seconds.
	MinDelay, MaxDelay time.Duration
	// Manual turns periodic uploads off: events are uploaded by
	// [DecisionLogger.Flush] only.
	Manual bool
	// UploadSizeLimitBytes limits the size of one gzip-compressed batch
	// (OPA's default 32 KiB); BufferSizeLimitBytes limits the events kept
	// in memory while the collector is unreachable (default unlimited).
	UploadSizeLimitBytes, BufferSizeLimitBytes int64
	// MaskDecision and DropDecision are the paths of the masking and drop
	// rules, evaluated against each event (defaults system/log/mask and
	// system/log/drop). The rules come from the policy given to
	// [DecisionLogger.UsePolicy], which a [Manager] does on every
	// activation.
	MaskDecision, DropDecision string
	// QueueSize, when above zero, makes LogDecision hand events to a
	// background goroutine through a queue of that many events, taking
	// OPA's masking and buffering off the request path. When the queue is
	// full, LogDecision drops the event and returns ErrQueueFull (counted in
	// [DecisionLogger.Dropped]). Zero logs synchronously, as OPA's server does.
	QueueSize int
	// ID identifies this instance in the events' labels (labels.id).
	// Default: a random identifier.
	ID string
	// Labels are added to every event, as OPA's configuration labels.
	Labels map[string]string
	// Logger receives console events and the logger's own errors.
	// Default slog.Default().
	Logger *slog.Logger
}

// DecisionLogger writes decisions in OPA's decision-log format (EventV1)
// with OPA's own decision-log plugin (plugins/logs), run by a plugin
// manager of its own with only the configured collector as a service: the
// batching, buffering, rate limiting, gzip upload, retries, masking
// (system.log.mask) and drop rules (system.log.drop) are OPA's, so an
// existing decision-log collector works unchanged.
//
// It implements [policy.DecisionLogger].
type DecisionLogger struct {
	manager *plugins.Manager
	plugin  *logs.Plugin
	logger  *slog.Logger

	// With QueueSize > 0: events wait in queue for the worker. closeMu
	// keeps LogDecision from sending on a closed queue.
	queue   chan policy.DecisionEvent
	closeMu sync.RWMutex
	closed  bool
	done    chan struct{}
	dropped atomic.Int64
	// lastDropWarn is when dropped events were last warned of (UnixNano).
	lastDropWarn atomic.Int64
	// failed counts queued events lost to a failed write (a full disk, a
	// closed file); lastFailWarn is when they were last logged.
	failed       atomic.Int64
	lastFailWarn atomic.Int64
	file         *fileSink // DecisionLogConfig.File
}

// ErrQueueFull is returned by [DecisionLogger.LogDecision] when the event
// queue (DecisionLogConfig.QueueSize) is full and the event was dropped. It
// wraps [policy.ErrDecisionDropped]: the logger counts such drops
// ([DecisionLogger.Dropped]) and warns of them at most once a minute, so
// that callers need not log each.
var ErrQueueFull = fmt.Errorf("bundles: decision log queue full: %w", policy.ErrDecisionDropped)

// dropWarnInterval bounds how often dropped events are warned of.
const dropWarnInterval = time.Minute

var _ policy.DecisionLogger = (*DecisionLogger)(nil)

// NewDecisionLogger configures and starts OPA's decision-log plugin. Stop
// it with [DecisionLogger.Stop] to upload what is buffered.
func NewDecisionLogger(ctx context.Context, cfg DecisionLogConfig) (*DecisionLogger, error) {
	if !cfg.Console && cfg.Service == nil && cfg.File == "" {
		return nil, errors.New("bundles: decision logs need Console, a Service or a File")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	id := cfg.ID
	if id == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		id = "regoguard-" + hex.EncodeToString(b[:])
	}

	const svcName = "decision-log-collector"
	mcfg := map[string]any{}
	if len(cfg.Labels) > 0 {
		mcfg["labels"] = cfg.Labels
	}
	if cfg.Service != nil {
		raw, err := cfg.Service.opaConfig(svcName)
		if err != nil {
			return nil, err
		}
		mcfg["services"] = map[string]json.RawMessage{svcName: raw}
	}
	rawManager, err := json.Marshal(mcfg)
	if err != nil {
		return nil, fmt.Errorf("bundles: decision logs: %w", err)
	}
	olog := newOPALogger(logger.With("component", "decision_logs"))
	// No version check (which is also OPA's telemetry), no other service: this manager only
	// talks to the collector.
	mgr, err := plugins.New(rawManager, id, inmem.New(),
		plugins.Logger(olog),
		plugins.ConsoleLogger(newOPALogger(logger)),
		plugins.WithEnableVersionCheck(false),
		plugins.WithParserOptions(ast.ParserOptions{RegoVersion: ast.RegoV1}),
	)
	if err != nil {
		return nil, fmt.Errorf("bundles: decision logs: %w", err)
	}

	ok := false
	var sink *fileSink
	defer func() {
		if !ok {
			mgr.Stop(ctx) // the manager runs a status goroutine from New on
			if sink != nil {
				_ = sink.close()
			}
		}
	}()
	var sinks []string
	if cfg.File != "" {
		if sink, err = openFileSink(cfg.File, cfg.FileMaxBytes, cfg.FileKeep); err != nil {
			return nil, err
		}
		mgr.Register(fileSinkName, sink)
		sinks = append(sinks, fileSinkName)
	}

	reporting := map[string]any{}
	trigger := plugins.TriggerPeriodic
	if cfg.Manual {
		trigger = plugins.TriggerManual
	}
	reporting["trigger"] = trigger
	if cfg.MinDelay > 0 || cfg.MaxDelay > 0 {
		lo, hi := seconds(cfg.MinDelay), seconds(cfg.MaxDelay)
		hi = max(hi, lo)
		reporting["min_delay_seconds"], reporting["max_delay_seconds"] = lo, hi
	}
	if cfg.UploadSizeLimitBytes > 0 {
		reporting["upload_size_limit_bytes"] = cfg.UploadSizeLimitBytes
	}
	if cfg.BufferSizeLimitBytes > 0 {
		reporting["buffer_size_limit_bytes"] = cfg.BufferSizeLimitBytes
	}
	lcfg := map[string]any{"console": cfg.Console, "reporting": reporting}
	if cfg.Service != nil {
		lcfg["service"] = svcName
		if cfg.Resource != "" {
			lcfg["resource"] = cfg.Resource
		}
	}
	if sink != nil {
		lcfg["plugin"] = fileSinkName
	}
	if cfg.MaskDecision != "" {
		lcfg["mask_decision"] = cfg.MaskDecision
	}
	if cfg.DropDecision != "" {
		lcfg["drop_decision"] = cfg.DropDecision
	}
	rawLogs, err := json.Marshal(lcfg)
	if err != nil {
		return nil, fmt.Errorf("bundles: decision logs: %w", err)
	}
	parsed, err := logs.NewConfigBuilder().
		WithBytes(rawLogs).
		WithServices(mgr.Services()).
		WithPlugins(sinks).
		WithTriggerMode(&trigger).
		WithLogger(olog).
		Parse()
	if err != nil {
		return nil, fmt.Errorf("bundles: decision logs: %w", err)
	}
	plugin := logs.New(parsed, mgr)
	mgr.Register(logs.Name, plugin)
	if err := mgr.Start(ctx); err != nil {
		return nil, fmt.Errorf("bundles: decision logs: %w", err)
	}
	ok = true
	d := &DecisionLogger{manager: mgr, plugin: plugin, logger: logger, file: sink}
	if cfg.QueueSize > 0 {
		d.queue, d.done = make(chan policy.DecisionEvent, cfg.QueueSize), make(chan struct{})
		go d.work()
	}
	return d, nil
}

// work logs queued events until the queue is closed.
func (d *DecisionLogger) work() {
	defer close(d.done)
	for ev := range d.queue {
		if err := d.log(context.Background(), ev); err != nil {
			d.warnFailed(d.failed.Add(1), ev.ID, err)
		}
	}
}

// UsePolicy makes the masking and drop rules of p (system.log.mask and
// system.log.drop, or the configured paths) apply to the events that follow.
// A [Manager] calls it on every activation when Config.DecisionLogger is set;
// call it yourself when the policy comes from elsewhere.
//
// The policy is compiled a second time into the plugin manager's compiler,
// which is where OPA's plugin looks for those rules.
func (d *DecisionLogger) UsePolicy(ctx context.Context, p *policy.Policy) error {
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(p.Modules); compiler.Failed() {
		return fmt.Errorf("bundles: decision logs: compile policy: %w", compiler.Errors)
	}
	data, err := p.Document()
	if err != nil {
		return fmt.Errorf("bundles: decision logs: %w", err)
	}
	if data == nil {
		data = map[string]any{}
	}
	params := storage.TransactionParams{Write: true, Context: storage.NewContext()}
	return storage.Txn(ctx, d.manager.Store, params, func(txn storage.Transaction) error {
		if err := d.manager.Store.Write(ctx, txn, storage.AddOp, storage.RootPath, data); err != nil {
			return fmt.Errorf("bundles: decision logs: store data: %w", err)
		}
		// The manager installs this compiler on commit and tells the plugin
		// to prepare its mask and drop queries again.
		plugins.SetCompilerOnContext(params.Context, compiler)
		return nil
	})
}

// LogDecision hands ev to OPA's decision-log plugin, which masks or drops
// it and then writes it to the console or buffers it for upload. It does
// not wait for the upload. With DecisionLogConfig.QueueSize it only queues
// ev; ev and the values it holds must then not be modified afterwards.
func (d *DecisionLogger) LogDecision(ctx context.Context, ev policy.DecisionEvent) error {
	if d.queue == nil {
		return d.log(ctx, ev)
	}
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.closed {
		return errors.New("bundles: decision logger stopped")
	}
	select {
	case d.queue <- ev:
		return nil
	default:
		d.warnDropped(d.dropped.Add(1))
		return ErrQueueFull
	}
}

// Dropped returns how many events were dropped because the queue was full.
func (d *DecisionLogger) Dropped() int64 { return d.dropped.Load() }

// Failed returns how many queued events were lost because writing them
// failed (the decision-log file could not be written: a full disk, a file
// system gone read-only). Such an event is not retried: the decision it
// records was made and answered; the loss is counted here and logged.
func (d *DecisionLogger) Failed() int64 { return d.failed.Load() }

// warnFailed logs a lost event: the first, then at most one line per
// dropWarnInterval with the total so far, so that a full disk cannot
// flood the log with a line per request.
func (d *DecisionLogger) warnFailed(total int64, id string, err error) {
	now := time.Now().UnixNano()
	last := d.lastFailWarn.Load()
	if last != 0 && now-last < int64(dropWarnInterval) || !d.lastFailWarn.CompareAndSwap(last, now) {
		return
	}
	d.logger.Error("decision log write failed: events lost", "failed_total", total, "decision_id", id, "error", err)
}

// warnDropped warns that events are being dropped, with their total so
// far: at the first drop, then at most once per dropWarnInterval.
func (d *DecisionLogger) warnDropped(total int64) {
	now := time.Now().UnixNano()
	last := d.lastDropWarn.Load()
	if last != 0 && now-last < int64(dropWarnInterval) || !d.lastDropWarn.CompareAndSwap(last, now) {
		return
	}
	d.logger.Warn("decision log queue full: events dropped (see DecisionLogConfig.QueueSize)", "dropped_total", total)
}

func (d *DecisionLogger) log(ctx context.Context, ev policy.DecisionEvent) error {
	info := &server.Info{
		DecisionID: ev.ID,
		Path:       ev.Path,
		Timestamp:  ev.Timestamp,
		InputAST:   ev.Input,
		Custom:     eventCustom(ev),

		BatchDecisionID: ev.BatchID,
	}
	if ev.Err != nil {
		// OPA's own error shape, {"code": ..., "message": ...}: a plain
		// error would be logged as {}.
		info.Error = types.NewErrorV1(types.CodeInternal, "%s", ev.Err.Error())
	}
	if info.Timestamp.IsZero() {
		info.Timestamp = time.Now()
	}
	if ev.Input != nil {
		// Masking edits the JSON form of the input, so both are needed.
		input, err := ast.JSON(ev.Input)
		if err != nil {
			return fmt.Errorf("bundles: decision log input: %w", err)
		}
		info.Input = &input
	}
	if ev.Result != nil {
		result := ev.Result
		info.Results = &result
	}
	if len(ev.Bundles) > 0 {
		info.Bundles = make(map[string]server.BundleInfo, len(ev.Bundles))
		for name, rev := range ev.Bundles {
			info.Bundles[name] = server.BundleInfo{Revision: rev}
		}
	} else {
		info.Revision = ev.Revision
	}
	if ev.Duration > 0 {
		info.Metrics = evalTime(ev.Duration.Nanoseconds())
	}
	// The request may be over by now; masking must still run.
	if err := d.plugin.Log(context.WithoutCancel(ctx), info); err != nil {
		return fmt.Errorf("bundles: decision log: %w", err)
	}
	return nil
}

// eventCustom is the event's "custom" object: ev.Custom, and what the
// event records of the decision's making under policy.EventCustomKey.
// ev.Custom is copied, never written to.
func eventCustom(ev policy.DecisionEvent) map[string]any {
	rec := map[string]any{}
	if ev.InputLayout != "" {
		rec["input_layout"] = ev.InputLayout
	}
	if ev.DenyStatus != 0 {
		rec["deny_status"] = ev.DenyStatus
	}
	switch c := ev.Caller; {
	case c == nil:
	case c.Anonymous:
		rec["anonymous"] = true
	default:
		rec["sub"] = c.Subject
		if c.Method != "" {
			rec["auth_method"] = c.Method
		}
	}
	if len(rec) == 0 {
		return ev.Custom
	}
	custom := make(map[string]any, len(ev.Custom)+1)
	maps.Copy(custom, ev.Custom)
	custom[policy.EventCustomKey] = rec
	return custom
}

// Flush uploads the buffered events now and waits for the upload. Events
// still in the queue (QueueSize) are not waited for; [DecisionLogger.Stop]
// drains the queue.
func (d *DecisionLogger) Flush(ctx context.Context) error {
	if err := d.plugin.Trigger(ctx); err != nil {
		return fmt.Errorf("bundles: decision log upload: %w", err)
	}
	return nil
}

// Stop logs the events still queued, then stops the plugin, uploading what
// is buffered until ctx's deadline (periodic mode only, as in OPA).
func (d *DecisionLogger) Stop(ctx context.Context) {
	if d.queue != nil {
		d.closeMu.Lock()
		if !d.closed {
			d.closed = true
			close(d.queue)
		}
		d.closeMu.Unlock()
		select {
		case <-d.done:
		case <-ctx.Done():
		}
	}
	if d.file != nil {
		if err := d.file.close(); err != nil {
			d.logger.Error("decision log file not closed cleanly", "error", err)
		}
	}
	d.manager.Stop(ctx)
}

// evalTime reports the evaluation time of a decision in the event's metrics
// under the name OPA's server uses; the plugin only reads All.
type evalTime int64

func (t evalTime) All() map[string]any { return map[string]any{"timer_rego_query_eval_ns": int64(t)} }

func (evalTime) Info() metrics.Info                   { return metrics.NoOp().Info() }
func (evalTime) Timer(n string) metrics.Timer         { return metrics.NoOp().Timer(n) }
func (evalTime) Histogram(n string) metrics.Histogram { return metrics.NoOp().Histogram(n) }
func (evalTime) Counter(n string) metrics.Counter     { return metrics.NoOp().Counter(n) }
func (evalTime) Clear()                               {}
func (t evalTime) MarshalJSON() ([]byte, error)       { return json.Marshal(t.All()) }
