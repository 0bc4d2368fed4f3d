package kafkaserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// formatStorage gives s.dataDir a formatted KRaft storage unless it has one
// (a restart of the same Dir). It copies a template formatted once per
// Kafka version into the cache, formatting in place if the cache cannot be
// written.
func (s *Server) formatStorage(ctx context.Context) error {
	if fileExists(filepath.Join(s.dataDir, "meta.properties")) {
		return nil
	}
	if err := os.MkdirAll(s.dataDir, 0o755); err != nil {
		return fmt.Errorf("kafkaserver: %w", err)
	}
	tmpl, err := s.storageTemplate(ctx)
	if err != nil {
		// No usable cache: format this broker's own storage.
		if err := s.runStorageTool(ctx, s.dataDir, s.dir); err != nil {
			return err
		}
		return nil
	}
	return copyDir(tmpl, s.dataDir)
}

// storageTemplate returns a directory formatted by kafka.tools.StorageTool
// for a node like ours (node.id 1, static controller quorum), creating it in
// the cache the first time. The template is what the format command writes
// (meta.properties with a cluster id, bootstrap.checkpoint with the feature
// levels); it holds no port or path, so any number of independent test
// brokers can start from copies of it.
func (s *Server) storageTemplate(ctx context.Context) (string, error) {
	key := shortHash("storage-v1", fmt.Sprint(nodeID), "static-voters", s.classpath)
	tmpl := filepath.Join(s.cacheDir, "storage-template-"+key)
	if fileExists(filepath.Join(tmpl, "meta.properties")) {
		return tmpl, nil
	}
	work, err := os.MkdirTemp(s.cacheDir, ".storage-template-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	data := filepath.Join(work, "data")
	if err := s.runStorageTool(ctx, data, work); err != nil {
		return "", err
	}
	// Another process may have won the race; either copy will do.
	if err := os.Rename(data, tmpl); err != nil && !fileExists(filepath.Join(tmpl, "meta.properties")) {
		return "", err
	}
	return tmpl, nil
}

// runStorageTool formats dataDir, using confDir for its configuration file.
func (s *Server) runStorageTool(ctx context.Context, dataDir, confDir string) error {
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=%d
controller.quorum.voters=%d@127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=%s
`, nodeID, nodeID, dataDir)
	conf := filepath.Join(confDir, "format.properties")
	if err := os.WriteFile(conf, []byte(props), 0o644); err != nil {
		return fmt.Errorf("kafkaserver: %w", err)
	}
	logConf := filepath.Join(confDir, "format-log4j2.properties")
	if err := os.WriteFile(logConf, []byte(log4jConfig), 0o644); err != nil {
		return fmt.Errorf("kafkaserver: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, s.java,
		"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-Dlog4j2.configurationFile="+logConf,
		"-cp", s.classpath, "kafka.tools.StorageTool",
		"format", "--config", conf, "--cluster-id", randomUUID())
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kafkaserver: formatting storage with kafka.tools.StorageTool: %w\n%s", err, lastBytes(out.String(), 3000))
	}
	return nil
}

// cdsArgs returns the JVM options for class data sharing: map the archive if
// one exists for this Java and class path, else dump one at exit into tmp,
// which keepCDS renames to final after a clean shutdown.
func (s *Server) cdsArgs() (args []string, tmp, final string) {
	if s.cacheDir == "" {
		return nil, "", ""
	}
	id, err := javaIdentity(s.java)
	if err != nil {
		return nil, "", ""
	}
	dir := filepath.Join(s.cacheDir, "cds")
	// The JVM refuses an archive whose jars changed (it checks their size
	// and time), so key it by those too, or a refetch would leave an
	// archive that is never used and never replaced.
	final = filepath.Join(dir, shortHash("cds-v1", id, jarStamps(s.classpath))+".jsa")
	if st, err := os.Stat(final); err == nil && st.Size() > 0 {
		return []string{"-XX:SharedArchiveFile=" + final}, "", final
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", ""
	}
	// One broker at a time dumps the archive (test binaries run in
	// parallel, and dumping costs CPU at shutdown); the others run without
	// CDS meanwhile. A claim older than cdsClaimTTL is from a process that
	// died before it could clean up.
	claim := final + ".dumping"
	if st, err := os.Stat(claim); err == nil && time.Since(st.ModTime()) > cdsClaimTTL {
		_ = os.Remove(claim)
	}
	f, err := os.OpenFile(claim, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, "", ""
	}
	f.Close()
	// Holding the claim, any partial archive left is from a dead process.
	if old, err := filepath.Glob(final + ".tmp-*"); err == nil {
		for _, o := range old {
			_ = os.Remove(o)
		}
	}
	tmp = fmt.Sprintf("%s.tmp-%d-%s", final, os.Getpid(), randomHex(4))
	return []string{"-XX:ArchiveClassesAtExit=" + tmp}, tmp, final
}

// cdsClaimTTL is how long a claim to dump the CDS archive is honoured.
const cdsClaimTTL = 10 * time.Minute

// cdsDumpStopTimeout is how long Stop waits for a JVM that dumps the CDS
// archive at exit: on a busy 2-core machine writing the ~50 MB archive can
// take well over the usual StopTimeout, and killing it would throw the
// archive away, only for the next broker to try again.
const cdsDumpStopTimeout = 3 * time.Minute

func (p *process) dumpingCDS() bool { return p.cdsTmp != "" }

func (p *process) keepCDS() {
	if p.cdsTmp == "" {
		return
	}
	if st, err := os.Stat(p.cdsTmp); err == nil && st.Size() > 0 {
		if err := os.Rename(p.cdsTmp, p.cdsFinal); err == nil {
			_ = os.Remove(p.cdsFinal + ".dumping")
			return
		}
	}
	p.removeCDSTmp()
}

func (p *process) removeCDSTmp() {
	if p.cdsTmp != "" {
		_ = os.Remove(p.cdsTmp)
		_ = os.Remove(p.cdsFinal + ".dumping")
	}
}

// jarStamps is the class path with each jar's size and modification time.
func jarStamps(classpath string) string {
	var sb strings.Builder
	for _, jar := range filepath.SplitList(classpath) {
		sb.WriteString(jar)
		if st, err := os.Stat(jar); err == nil {
			fmt.Fprintf(&sb, " %d %d", st.Size(), st.ModTime().UnixNano())
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

// javaIdentity names the Java runtime precisely enough that a CDS archive
// made by one is never offered to another: the resolved binary, its
// installation's release file and the JVM library's size and time.
func javaIdentity(java string) (string, error) {
	real, err := filepath.EvalSymlinks(java)
	if err != nil {
		return "", err
	}
	home := filepath.Dir(filepath.Dir(real))
	parts := []string{real}
	if b, err := os.ReadFile(filepath.Join(home, "release")); err == nil {
		parts = append(parts, string(b))
	}
	for _, p := range []string{filepath.Join(home, "lib", "server", "libjvm.so"), real} {
		if st, err := os.Stat(p); err == nil {
			parts = append(parts, fmt.Sprint(p, st.Size(), st.ModTime().UnixNano()))
		}
	}
	return strings.Join(parts, "\n"), nil
}

// spawn runs exec.Cmd.Start on one goroutine locked to its OS thread for
// the life of the process. Pdeathsig is delivered when the thread that
// forked the child exits, not the process; Go may retire other threads, but
// never this one, so the JVM is killed exactly when the test binary dies.
var spawn struct {
	once sync.Once
	ch   chan spawnReq
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan error
}

func startLocked(cmd *exec.Cmd) error {
	spawn.once.Do(func() {
		spawn.ch = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawn.ch {
				r.err <- r.cmd.Start()
			}
		}()
	})
	req := spawnReq{cmd: cmd, err: make(chan error, 1)}
	spawn.ch <- req
	return <-req.err
}

func copyDir(src, dst string) error {
	return filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

func shortHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// randomUUID returns a random UUID in Kafka's form (base64url, no padding).
// Like Kafka's own Uuid.randomUuid, it never starts with '-', which a
// command line would take for an option.
func randomUUID() string {
	for {
		var b [16]byte
		_, _ = rand.Read(b[:])
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
