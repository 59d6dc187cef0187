package filterdiff

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the PostgreSQL driver, "pgx"
)

// ErrNoPostgres is returned by StartPostgres when the server's binaries
// (Debian's postgresql package) are not installed.
var ErrNoPostgres = errors.New("the PostgreSQL server is not installed (apt-get install -y postgresql)")

// Postgres is a real PostgreSQL server started for the tests: a temporary
// data directory, a loopback port, a private socket directory, and no
// durability (fsync off).
type Postgres struct {
	DSN string

	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
	log    lockedBuffer
}

// PostgresBinDir returns the directory holding initdb and postgres: $PG_BIN,
// or the newest /usr/lib/postgresql/*/bin (Debian's layout), or the PATH's.
func PostgresBinDir() (string, error) {
	var dirs []string
	if d := os.Getenv("PG_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(found, func(i, j int) bool { return pgMajor(found[i]) > pgMajor(found[j]) })
	dirs = append(dirs, found...)
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isFile(p string) bool {
	info, err := os.Stat(p)
	return err == nil && !info.IsDir()
}

// StartPostgres initialises a cluster in a temporary directory and starts
// the server on a free loopback port, then waits until it answers. Run as
// root, the server runs as the postgres user (or nobody), as PostgreSQL
// refuses to run as root. Stop it with Stop.
//
// The cluster is UTF-8 with the C.UTF-8 locale: strings compare by code
// point, as OPA compares them.
func StartPostgres(ctx context.Context) (*Postgres, error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "filterdiff-pg-")
	if err != nil {
		return nil, fmt.Errorf("filterdiff: postgres: %w", err)
	}
	p := &Postgres{dir: dir, exited: make(chan struct{})}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred, err = unprivileged()
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("filterdiff: postgres: %w", err)
		}
	}
	data, sock := filepath.Join(dir, "data"), dir
	run := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "PGTZ=UTC")
		// A test binary killed at its timeout takes the server with it
		// (SIGQUIT: PostgreSQL's immediate shutdown).
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
		return cmd
	}
	initdb := run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C.UTF-8", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("filterdiff: initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	p.cmd = run("postgres", "-D", data, "-k", sock, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=20", "-c", "shared_buffers=16MB")
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	if err := p.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("filterdiff: start postgres: %w", err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	p.DSN = fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port)
	db, err := sql.Open("pgx", p.DSN)
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("filterdiff: postgres: %w", err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			return p, nil
		}
		select {
		case <-p.exited:
			p.Stop()
			return nil, fmt.Errorf("filterdiff: postgres exited: %s", p.log.String())
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("filterdiff: postgres did not answer within 30s: %v: %s", err, p.log.String())
		}
	}
}

// unprivileged returns the credentials of the postgres user, or nobody.
func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("filterdiff: running as root and neither the postgres nor the nobody user exists to run PostgreSQL")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("filterdiff: free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Open opens the server's database.
func (p *Postgres) Open() (*DB, error) {
	db, err := sql.Open("pgx", p.DSN)
	if err != nil {
		return nil, fmt.Errorf("filterdiff: postgres: %w", err)
	}
	db.SetMaxOpenConns(4)
	return &DB{SQL: db, Dialect: "postgresql"}, nil
}

// Log is what the server printed.
func (p *Postgres) Log() string { return p.log.String() }

// Stop stops the server (fast shutdown, then a kill after 10 s) and removes
// its directory.
func (p *Postgres) Stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	_ = os.RemoveAll(p.dir)
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
