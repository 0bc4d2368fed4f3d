package kafkatest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/sbor-dev/sbor/internal/testkit/kafkaserver"
)

// recorder is a testing.TB whose Fatalf records instead of stopping the
// goroutine, to test what Brokers does when it must fail a test.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
}

func newEnv(t *testing.T, cfg config) *env {
	e := &env{cfg: cfg}
	t.Cleanup(e.close)
	return e
}

// brokenServer makes kafkaserver fail the way a machine without Java does.
var brokenServer = kafkaserver.Options{Java: "/nonexistent/bin/java"}

func roundTrip(t *testing.T, brokers []string) {
	t.Helper()
	topic := Topic(t, brokers, "fallback")
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v1")}, kafka.Message{Key: []byte("k"), Value: []byte("v2")}); err != nil {
		t.Fatal(err)
	}
	got := Consume(t, brokers, topic, 2, 20*time.Second)
	if string(got[0].Value) != "v1" || string(got[1].Value) != "v2" {
		t.Fatalf("got %q, %q", got[0].Value, got[1].Value)
	}
}

func TestForcedFake(t *testing.T) {
	var notice bytes.Buffer
	e := newEnv(t, config{forceFake: true, notice: &notice})
	brokers := e.get(t)
	if e.backend != KFake {
		t.Fatalf("backend %s", e.backend)
	}
	if n := strings.Count(notice.String(), "\n"); n != 1 || !strings.Contains(notice.String(), EnvFake) {
		t.Fatalf("notice %q, want one line naming %s", notice.String(), EnvFake)
	}
	roundTrip(t, brokers)
}

func TestFallbackWhenBrokerCannotStart(t *testing.T) {
	var notice bytes.Buffer
	e := newEnv(t, config{server: brokenServer, notice: &notice})
	brokers := e.get(t)
	e.get(t) // a second call starts nothing and prints nothing
	if e.backend != KFake {
		t.Fatalf("backend %s", e.backend)
	}
	line := notice.String()
	if strings.Count(line, "\n") != 1 || !strings.Contains(line, "no Java runtime") || !strings.Contains(line, EnvRequire) {
		t.Fatalf("notice %q: want one line with the reason and %s", line, EnvRequire)
	}
	t.Logf("notice: %s", line)
	roundTrip(t, brokers)
}

func TestRequireFailsInsteadOfFallingBack(t *testing.T) {
	var notice bytes.Buffer
	e := newEnv(t, config{server: brokenServer, require: true, notice: &notice})
	r := &recorder{TB: t}
	if brokers := e.get(r); brokers != nil {
		t.Fatalf("got brokers %v", brokers)
	}
	if !strings.Contains(r.fatal, EnvRequire) || !strings.Contains(r.fatal, "no Java runtime") {
		t.Fatalf("fatal %q", r.fatal)
	}
	if notice.Len() != 0 || e.fake != nil {
		t.Fatalf("fell back anyway (notice %q)", notice.String())
	}
}

func TestExternalBrokers(t *testing.T) {
	e := newEnv(t, config{external: " 127.0.0.1:19092 , 127.0.0.1:19093,", server: brokenServer})
	got := e.get(t)
	if e.backend != External || strings.Join(got, ",") != "127.0.0.1:19092,127.0.0.1:19093" {
		t.Fatalf("backend %s, brokers %v", e.backend, got)
	}
}

func TestConsumeTimesOut(t *testing.T) {
	e := newEnv(t, config{forceFake: true})
	brokers := e.get(t)
	topic := Topic(t, brokers, "empty")
	r := &recorder{TB: t}
	start := time.Now()
	Consume(r, brokers, topic, 1, 500*time.Millisecond)
	if !strings.Contains(r.fatal, "consumed 0 of 1") {
		t.Fatalf("fatal %q", r.fatal)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestTopicName(t *testing.T) {
	for prefix, want := range map[string]string{
		"TestX/sub case":   "TestX-sub-case-",
		"":                 "test-",
		"ticket.purchased": "ticket.purchased-",
	} {
		got := topicName(prefix)
		if !strings.HasPrefix(got, want) || len(got) != len(want)+12 {
			t.Errorf("topicName(%q) = %q", prefix, got)
		}
	}
}

func TestRemoveOrphans(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip(err)
	}
	mk := func(pid int) string {
		d, err := os.MkdirTemp("", tmpPattern)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		return d
	}
	orphan := mk(dead.ProcessState.Pid())
	mine := mk(os.Getpid())
	removeOrphans()
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Errorf("orphan %s not removed (%v)", orphan, err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("live directory %s removed: %v", mine, err)
	}
}
