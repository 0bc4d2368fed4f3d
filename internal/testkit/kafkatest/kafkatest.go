package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sbor-dev/sbor/internal/testkit/kafkaserver"
)

// Environment variables read once per test binary.
const (
	// EnvBrokers names an existing cluster ("host:port,host:port") to use
	// instead of starting one.
	EnvBrokers = "KAFKA_BROKERS"
	// EnvRequire, set to 1, makes a missing Apache Kafka broker fail the
	// tests instead of falling back to kfake.
	EnvRequire = "SBOR_REQUIRE_KAFKA"
	// EnvFake, set to 1, skips Apache Kafka and uses kfake straight away.
	EnvFake = "SBOR_KAFKA_FAKE"
)

// Backend names where the brokers of Brokers come from.
type Backend string

const (
	// External is a cluster named by KAFKA_BROKERS.
	External Backend = "external"
	// ApacheKafka is the broker this package started with kafkaserver.
	ApacheKafka Backend = "apache-kafka"
	// KFake is franz-go's in-process fake, the fallback.
	KFake Backend = "kfake"
)

// Main runs the tests and then stops whatever Brokers started, and exits
// with the tests' code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	defaultEnv.close()
	os.Exit(code)
}

// Brokers returns the bootstrap addresses of the test cluster, starting it
// on first use (see the package documentation for where it comes from). It
// fails the test when SBOR_REQUIRE_KAFKA=1 and no Apache Kafka broker could
// be had.
func Brokers(t testing.TB) []string {
	t.Helper()
	return defaultEnv.get(t)
}

// BackendOf returns which kind of cluster Brokers hands out, starting it if
// need be. Tests that depend on behaviour only real Kafka has can skip on
// KFake.
func BackendOf(t testing.TB) Backend {
	t.Helper()
	defaultEnv.get(t)
	return defaultEnv.backend
}

var defaultEnv = &env{cfg: configFromEnv()}

// config is what decides the cluster; tests of this package build their own.
type config struct {
	external  string // KAFKA_BROKERS
	require   bool
	forceFake bool
	server    kafkaserver.Options // Dir is set by start
	notice    io.Writer           // where the one fallback line goes
}

func configFromEnv() config {
	return config{
		external:  os.Getenv(EnvBrokers),
		require:   os.Getenv(EnvRequire) == "1",
		forceFake: os.Getenv(EnvFake) == "1",
		notice:    os.Stderr,
	}
}

// env is one lazily started cluster.
type env struct {
	cfg  config
	once sync.Once

	brokers []string
	backend Backend
	err     error // set when the tests must fail instead (EnvRequire)

	srv    *kafkaserver.Server
	fake   *kfake.Cluster
	tmpDir string
}

func (e *env) get(t testing.TB) []string {
	t.Helper()
	e.once.Do(e.start)
	if e.err != nil {
		t.Fatalf("kafkatest: %v", e.err)
		return nil
	}
	return slices.Clone(e.brokers)
}

func (e *env) start() {
	if e.cfg.external != "" {
		for _, b := range strings.Split(e.cfg.external, ",") {
			if b = strings.TrimSpace(b); b != "" {
				e.brokers = append(e.brokers, b)
			}
		}
		if len(e.brokers) == 0 {
			e.err = fmt.Errorf("%s=%q names no broker", EnvBrokers, e.cfg.external)
			return
		}
		e.backend = External
		return
	}

	var reason error
	if e.cfg.forceFake {
		reason = fmt.Errorf("%s=1", EnvFake)
	} else if reason = e.startServer(); reason == nil {
		return
	}

	if e.cfg.require {
		e.err = fmt.Errorf("%s=1 but no Apache Kafka broker: %v", EnvRequire, reason)
		return
	}
	if e.cfg.notice != nil {
		fmt.Fprintf(e.cfg.notice, "kafkatest: using in-process kfake instead of Apache Kafka (%s); set %s=1 to fail instead\n",
			oneLine(reason.Error(), 400), EnvRequire)
	}
	if err := e.startFake(); err != nil {
		e.err = fmt.Errorf("no Apache Kafka broker (%v) and kfake failed too: %w", reason, err)
	}
}

func (e *env) startServer() error {
	removeOrphans()
	dir, err := os.MkdirTemp("", tmpPattern)
	if err != nil {
		return err
	}
	e.tmpDir = dir
	_ = os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
	opts := e.cfg.server
	opts.Dir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	srv, err := kafkaserver.Start(ctx, opts)
	if err != nil {
		_ = os.RemoveAll(dir)
		e.tmpDir = ""
		return err
	}
	e.srv = srv
	e.brokers = []string{srv.Brokers()}
	e.backend = ApacheKafka
	return nil
}

const (
	tmpPattern = "sbor-kafkatest-*"
	ownerFile  = "owner.pid"
)

// removeOrphans deletes the broker directories of test binaries that died
// without running Main's cleanup (killed on timeout, say). Their JVMs died
// with them (Pdeathsig), but the data stayed.
func removeOrphans() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tmpPattern))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

func (e *env) startFake() error {
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(3),
	)
	if err != nil {
		return err
	}
	e.fake = c
	e.brokers = c.ListenAddrs()
	e.backend = KFake
	return nil
}

// close stops what start started. The env cannot be used afterwards.
func (e *env) close() {
	e.once.Do(func() {}) // a later get must not start anything
	if e.srv != nil {
		_ = e.srv.Stop()
		e.srv = nil
	}
	if e.fake != nil {
		e.fake.Close()
		e.fake = nil
	}
	if e.tmpDir != "" {
		_ = os.RemoveAll(e.tmpDir)
		e.tmpDir = ""
	}
}

// Topic creates a topic named prefix plus a random suffix, with 3
// partitions and replication factor 1, waits until every partition has a
// leader and until kafka.DefaultTransport knows it (for a kafka.Writer with
// Addr: kafka.TCP(brokers...) and the default Transport), and returns its
// name. An empty prefix means the test's name. The
// topic is deleted when the test ends, unless the test failed (its messages
// may help).
func Topic(t testing.TB, brokers []string, prefix string) string {
	t.Helper()
	if prefix == "" {
		prefix = t.Name()
	}
	name := topicName(prefix)

	adm, closeAdm := admin(t, brokers)
	defer closeAdm()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// min.insync.replicas=1 so that acks=all works on an external cluster
	// whose default asks for more replicas than this topic has.
	minISR := "1"
	resp, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"min.insync.replicas": &minISR}, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("kafkatest: creating topic %s: %v", name, err)
	}
	if err := waitLeaders(ctx, adm, name, 3); err != nil {
		t.Fatalf("kafkatest: topic %s: %v", name, err)
	}
	// kafka-go's Transport answers metadata from a cache it refreshes every
	// 6s, so a kafka.Writer on the shared kafka.DefaultTransport would be
	// told the new topic does not exist, and could give up before the next
	// refresh. A metadata request that allows auto-creation makes the
	// transport refresh now and wait until it sees the topic (which exists,
	// so nothing is created).
	if _, err := kafka.DefaultTransport.RoundTrip(ctx, kafka.TCP(brokers...), &metadata.Request{
		TopicNames:             []string{name},
		AllowAutoTopicCreation: true,
	}); err != nil {
		t.Fatalf("kafkatest: refreshing kafka-go's metadata for %s: %v", name, err)
	}

	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		adm, closeAdm := admin(t, brokers)
		defer closeAdm()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(ctx, name)
	})
	return name
}

var illegalTopicChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// topicName turns prefix into a legal, unique topic name.
func topicName(prefix string) string {
	p := illegalTopicChars.ReplaceAllString(prefix, "-")
	p = strings.Trim(p, "-")
	if p == "" || p == "." || p == ".." {
		p = "test"
	}
	if len(p) > 200 {
		p = p[:200]
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return p + "-" + hex.EncodeToString(b[:])
}

func waitLeaders(ctx context.Context, adm *kadm.Client, topic string, partitions int) error {
	var last error
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			td, ok := md.Topics[topic]
			switch {
			case !ok:
				err = errors.New("not in metadata yet")
			case td.Err != nil:
				err = td.Err
			case len(td.Partitions) < partitions:
				err = fmt.Errorf("%d of %d partitions in metadata", len(td.Partitions), partitions)
			default:
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						err = fmt.Errorf("partition %d has no leader yet (%v)", p.Partition, p.Err)
						break
					}
				}
			}
		}
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("no leaders: %v", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func admin(t testing.TB, brokers []string) (*kadm.Client, func()) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatalf("kafkatest: admin client: %v", err)
	}
	return kadm.NewClient(cl), cl.Close
}

// Consume reads n messages of topic from the beginning of each partition,
// with one kafka-go partition reader per partition (no consumer group, so
// nothing is committed and no group state is left behind). It fails the test
// if fewer than n arrive within timeout. The messages are sorted by
// partition, then offset, so the order of one key's messages is kept. If the
// topic holds more than n, which n are returned is unspecified.
func Consume(t testing.TB, brokers []string, topic string, n int, timeout time.Duration) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	adm, closeAdm := admin(t, brokers)
	md, err := adm.Metadata(ctx, topic)
	closeAdm()
	if err != nil {
		t.Fatalf("kafkatest: metadata of %s: %v", topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		t.Fatalf("kafkatest: topic %s not found (%v)", topic, td.Err)
	}

	readCtx, stop := context.WithCancel(ctx)
	defer stop()
	msgs := make(chan kafka.Message)
	errs := make(chan error, len(td.Partitions))
	var wg sync.WaitGroup
	for _, p := range td.Partitions {
		wg.Add(1)
		go func(partition int) {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{
				Brokers:   brokers,
				Topic:     topic,
				Partition: partition,
				MinBytes:  1,
				MaxBytes:  10 << 20,
				MaxWait:   100 * time.Millisecond,
			})
			defer r.Close()
			for {
				m, err := r.ReadMessage(readCtx)
				if err != nil {
					if readCtx.Err() == nil {
						errs <- fmt.Errorf("partition %d: %w", partition, err)
					}
					return
				}
				select {
				case msgs <- m:
				case <-readCtx.Done():
					return
				}
			}
		}(int(p.Partition))
	}

	var got []kafka.Message
	var readErr error
	for len(got) < n && readErr == nil {
		select {
		case m := <-msgs:
			got = append(got, m)
		case err := <-errs:
			readErr = err
		case <-ctx.Done():
			readErr = fmt.Errorf("timed out after %v", timeout)
		}
	}
	stop()
	wg.Wait()
	if readErr != nil {
		t.Fatalf("kafkatest: consumed %d of %d messages from %s: %v", len(got), n, topic, readErr)
	}
	sort.SliceStable(got, func(i, j int) bool {
		if got[i].Partition != got[j].Partition {
			return got[i].Partition < got[j].Partition
		}
		return got[i].Offset < got[j].Offset
	})
	return got
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
