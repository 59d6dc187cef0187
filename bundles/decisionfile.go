package bundles

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
)

// Defaults of the decision-log file (DecisionLogConfig.File).
const (
	DefaultFileMaxBytes = 100 << 20
	DefaultFileKeep     = 3
)

// fileSinkName is the name the file sink is registered under in the
// decision-log plugin's manager (OPA's decision_logs.plugin).
const fileSinkName = "regoguard_decision_file"

// fileSink writes OPA decision-log events (EventV1, after masking and drop
// rules) to a file, one JSON object per line: the same objects OPA uploads
// to a collector. The file is rotated at maxBytes to path.1 … path.keep, so
// it never holds more than (keep+1)·maxBytes. Lines are buffered, flushed
// every second and on rotation, and flushed and fsynced by Stop.
type fileSink struct {
	path     string
	maxBytes int64
	keep     int

	mu     sync.Mutex
	f      *os.File
	w      *bufio.Writer
	size   int64
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

var _ logs.Logger = (*fileSink)(nil)

// openFileSink opens (appends to) path, so that a mistake in it fails at
// start-up. maxBytes and keep are DecisionLogConfig's FileMaxBytes and
// FileKeep: zero is the default, and a negative keep keeps no rotated file.
func openFileSink(path string, maxBytes int64, keep int) (*fileSink, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultFileMaxBytes
	}
	switch {
	case keep == 0:
		keep = DefaultFileKeep
	case keep < 0:
		keep = 0
	}
	s := &fileSink{path: path, maxBytes: maxBytes, keep: keep, stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.open(); err != nil {
		return nil, err
	}
	go s.flushEvery(time.Second)
	return s, nil
}

func (s *fileSink) open() error {
	// Decision logs hold request inputs: readable by the owner only.
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("bundles: decision log file: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("bundles: decision log file: %w", err)
	}
	// A file that was already there keeps its mode on open: one that others
	// may read is made owner-only before anything is written to it, or
	// refused.
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		if err := f.Chmod(perm &^ 0o077); err != nil {
			f.Close()
			return fmt.Errorf("bundles: decision log file %s is readable by others (mode %v) and cannot be made owner-only: %w", s.path, perm, err)
		}
	}
	s.f, s.w, s.size = f, bufio.NewWriterSize(f, 64<<10), info.Size()
	return nil
}

func (s *fileSink) flushEvery(d time.Duration) {
	defer close(s.done)
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if !s.closed {
				_ = s.w.Flush()
			}
			s.mu.Unlock()
		}
	}
}

// Log writes one event as a line.
func (s *fileSink) Log(_ context.Context, ev logs.EventV1) error {
	line, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("bundles: decision log file: %w", err)
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("bundles: decision log file closed")
	}
	if s.size > 0 && s.size+int64(len(line)) > s.maxBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	n, err := s.w.Write(line)
	s.size += int64(n)
	if err != nil {
		return fmt.Errorf("bundles: decision log file: %w", err)
	}
	return nil
}

// rotate closes the file and shifts it to path.1 (path.1 to path.2 …),
// dropping the oldest; with keep 0 the file is started again empty.
func (s *fileSink) rotate() error {
	if err := s.sync(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("bundles: decision log file: %w", err)
	}
	if s.keep == 0 {
		if err := os.Truncate(s.path, 0); err != nil {
			return fmt.Errorf("bundles: decision log file: %w", err)
		}
		return s.open()
	}
	for i := s.keep - 1; i >= 1; i-- {
		from := fmt.Sprintf("%s.%d", s.path, i)
		if _, err := os.Stat(from); err == nil {
			if err := os.Rename(from, fmt.Sprintf("%s.%d", s.path, i+1)); err != nil {
				return fmt.Errorf("bundles: decision log file: %w", err)
			}
		}
	}
	if err := os.Rename(s.path, s.path+".1"); err != nil {
		return fmt.Errorf("bundles: decision log file: %w", err)
	}
	return s.open()
}

func (s *fileSink) sync() error {
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("bundles: decision log file: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("bundles: decision log file: %w", err)
	}
	return nil
}

// close flushes, fsyncs and closes the file; later events are refused.
func (s *fileSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stop)
	err := s.sync()
	return errors.Join(err, s.f.Close())
}

// Start, Stop and Reconfigure make the sink an OPA plugin, which is what
// the decision-log plugin hands events to.
func (s *fileSink) Start(context.Context) error { return nil }

// Stop closes the file. The decision-log plugin's manager calls it on stop,
// after [DecisionLogger.Stop] has drained its queue.
func (s *fileSink) Stop(context.Context) {
	_ = s.close()
	<-s.done
}

// Reconfigure is a no-op: the file is configured once.
func (s *fileSink) Reconfigure(context.Context, any) {}

var _ plugins.Plugin = (*fileSink)(nil)
