package policy

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long [Engine.WatchFiles] waits after the last change to a policy
// file before reloading, so that an editor's or a deploy tool's burst of
// writes is loaded once, complete.
const DefaultDebounce = 200 * time.Millisecond

// WatchFiles loads the policy in paths (see [LoadFiles]) whenever a file
// under them changes, debounce after the last change (DefaultDebounce when
// zero), until ctx is done. A policy that fails to load or compile is logged
// and recorded in [Engine.Status]; the previous one keeps serving.
//
// WatchFiles does not do the first load: call [Engine.Load] with
// [LoadFiles] first, so that start-up fails loudly on a broken policy.
// It returns once the watch is in place; the watching goes on in the
// background until ctx is done.
func (e *Engine) WatchFiles(ctx context.Context, debounce time.Duration, paths ...string) error {
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("policy: watch: %w", err)
	}
	for _, p := range paths {
		if err := addWatches(w, p); err != nil {
			w.Close()
			return err
		}
	}
	go e.watchLoop(ctx, w, debounce, paths)
	return nil
}

// addWatches watches directories, since editors and deploy tools replace
// files by renaming, which a watch on the file itself would lose.
// fsnotify is not recursive, so every subdirectory gets its own watch.
func addWatches(w *fsnotify.Watcher, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("policy: watch: %w", err)
	}
	if !info.IsDir() {
		if err := w.Add(filepath.Dir(path)); err != nil {
			return fmt.Errorf("policy: watch %s: %w", path, err)
		}
		return nil
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := w.Add(p); err != nil {
				return fmt.Errorf("policy: watch %s: %w", p, err)
			}
		}
		return nil
	})
}

func (e *Engine) watchLoop(ctx context.Context, w *fsnotify.Watcher, debounce time.Duration, paths []string) {
	defer w.Close()
	timer := time.NewTimer(debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				// A new subdirectory needs a watch of its own; files are
				// covered by their directory's.
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
					_ = addWatches(w, ev.Name)
				}
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			e.logger.WarnContext(ctx, "policy watch error", "error", err)
		case <-timer.C:
			e.reloadFiles(ctx, paths)
		}
	}
}

func (e *Engine) reloadFiles(ctx context.Context, paths []string) {
	if err := e.ReloadFiles(ctx, paths...); err != nil {
		e.logger.ErrorContext(ctx, "policy reload failed; the previous policy keeps serving",
			"error", err, "revision", e.Revision())
	}
}

// ReloadFiles loads the policy in paths (see [LoadFiles]) and, as [Engine.Load]
// does, serves it only if it compiles. A file that cannot be read or parsed
// is an error recorded in [Engine.Status], and the previous policy keeps
// serving.
func (e *Engine) ReloadFiles(ctx context.Context, paths ...string) error {
	p, err := Loader{RegoVersion: e.version}.LoadFiles(paths...)
	if err != nil {
		e.RecordFailure(err)
		return err
	}
	return e.Load(ctx, p)
}
