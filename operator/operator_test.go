package operator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
	"github.com/sbor-dev/sbor/operator/internal/testenv"
)

var (
	testEnv   *testenv.Env
	k8sClient client.Client
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	defer kafkatest.Shutdown()
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}()
	testEnv = env
	if k8sClient, err = client.New(env.Config, client.Options{Scheme: Scheme()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// operatorAccount gives a namespace the operator's ServiceAccount with exactly the generated
// RBAC (config/rbac/role.yaml bound by a RoleBinding, as config/rbac does), and returns a
// REST config that authenticates as it. The operator under test has no other permission, so
// the test proves the markers are enough.
func operatorAccount(t *testing.T, ns string) *rest.Config {
	t.Helper()
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(testEnv.RepoRoot, "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(b, &role); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, &role); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := k8sClient.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "sbor-operator", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "sbor-operator", Namespace: ns}},
	}); err != nil {
		t.Fatal(err)
	}
	user, err := testEnv.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + ns + ":sbor-operator",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return user.Config()
}

// running is one Run of the operator.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func startOperator(t *testing.T, cfg Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { r.done <- Run(ctx, log, cfg) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("operator: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("operator did not stop")
	}
}

// producer writes CloudEvents as the event service's outbox relay does: keyed by the event id.
type producer struct {
	t      *testing.T
	w      *kafka.Writer
	prefix string
}

func (p *producer) send(typ string, d cloudevent.EventData, at time.Time) {
	p.t.Helper()
	ev, err := cloudevent.New("sbor-event", typ, d.EventID.String(), at, d)
	if err != nil {
		p.t.Fatal(err)
	}
	value, _ := json.Marshal(ev)
	msg := kafka.Message{Topic: p.prefix + typ, Key: []byte(d.EventID.String()), Value: value}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := p.w.WriteMessages(ctx, msg)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("produce %s: %v", typ, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getEVL(ns string, id uuid.UUID) (*sborv1.EventLifecycle, error) {
	var evl sborv1.EventLifecycle
	err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: id.String()}, &evl)
	return &evl, err
}

func waitEVL(t *testing.T, ns string, id uuid.UUID, what string, ok func(*sborv1.EventLifecycle) error) *sborv1.EventLifecycle {
	t.Helper()
	var evl *sborv1.EventLifecycle
	eventually(t, 60*time.Second, what, func() error {
		var err error
		if evl, err = getEVL(ns, id); err != nil {
			return err
		}
		return ok(evl)
	})
	return evl
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func eventData(id uuid.UUID, version int64, title string, starts time.Time, status string) cloudevent.EventData {
	return cloudevent.EventData{
		EventID: id, OrganizerID: uuid.New(), Title: title, Venue: "Hall 1",
		StartsAt: starts, EndsAt: starts.Add(2 * time.Hour), Status: status, Version: version,
	}
}

// TestOperatorMirrorsKafkaEvents runs the whole operator (Run) with only its generated RBAC, on
// real Kafka: events from the topics become EventLifecycles with reminder CronJobs, in order
// and idempotently; a restart resumes from the committed offsets.
func TestOperatorMirrorsKafkaEvents(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	suffix := randomSuffix()
	ns := "sbor-" + suffix
	cfg := Config{
		Namespace: ns, LeaderElection: true, MetricsAddr: "0", HealthProbeAddr: "0",
		KafkaBrokers: brokers, TopicPrefix: "t" + suffix + ".", ConsumerGroup: "sbor-operator-" + suffix,
		EventServiceURL: "http://sbor-event:8080", ReminderImage: "sbor:test",
		TopicPartitions: 1, TopicReplicationFactor: 1,
		RESTConfig: operatorAccount(t, ns),
	}
	// One partition per topic, so "B's message came before C's" holds across events too (the
	// restart check below depends on it); the operator finds them and leaves them be.
	if err := kafkabus.EnsureTopics(context.Background(), brokers, cfg.Topics(), 1, 1); err != nil {
		t.Fatal(err)
	}
	w := kafkabus.NewWriter(brokers)
	defer w.Close()
	p := &producer{t: t, w: w, prefix: cfg.TopicPrefix}

	op := startOperator(t, cfg)

	// Published a month ahead: a resource and a CronJob a day before the start.
	idA := uuid.New()
	startsA := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Minute)
	p.send(cloudevent.TypeEventPublished, eventData(idA, 1, "Go meetup", startsA, "published"), time.Now())
	evl := waitEVL(t, ns, idA, "EventLifecycle A", func(e *sborv1.EventLifecycle) error {
		if e.Status.ReminderScheduledFor == nil {
			return errors.New("no reminder scheduled yet")
		}
		return nil
	})
	if evl.Spec.Title != "Go meetup" || !evl.Spec.StartsAt.Equal(&metav1.Time{Time: startsA}) || evl.Spec.Version != 1 || evl.Status.Phase != sborv1.PhasePublished {
		t.Fatalf("A = %+v / %+v", evl.Spec, evl.Status)
	}
	cronJobName := evl.Status.ReminderCronJob
	var cj batchv1.CronJob
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: cronJobName}, &cj); err != nil {
		t.Fatalf("CronJob %q: %v", cronJobName, err)
	}
	at := startsA.Add(-24 * time.Hour)
	if want := fmt.Sprintf("%d %d %d %d *", at.Minute(), at.Hour(), at.Day(), int(at.Month())); cj.Spec.Schedule != want {
		t.Errorf("schedule %q, want %q", cj.Spec.Schedule, want)
	}

	// A newer version moves the start; an older one arriving late is dropped.
	movedA := startsA.Add(24 * time.Hour)
	p.send(cloudevent.TypeEventUpdated, eventData(idA, 3, "Go meetup v3", movedA, "published"), time.Now())
	p.send(cloudevent.TypeEventUpdated, eventData(idA, 2, "Go meetup v2 (stale)", startsA, "published"), time.Now())
	// event.reminder goes to another topic, so it is not ordered after the stale update: wait
	// for the v3 state, then the reminder, then check the stale one never won.
	waitEVL(t, ns, idA, "A at v3", func(e *sborv1.EventLifecycle) error {
		if e.Spec.Version != 3 || e.Spec.Title != "Go meetup v3" || e.Status.ReminderScheduledFor == nil ||
			!e.Status.ReminderScheduledFor.Time.Equal(movedA.Add(-24*time.Hour)) {
			return fmt.Errorf("spec v%d %q, reminder %v", e.Spec.Version, e.Spec.Title, e.Status.ReminderScheduledFor)
		}
		return nil
	})
	sentAt := time.Now().UTC().Truncate(time.Second)
	p.send(cloudevent.TypeEventReminder, eventData(idA, 3, "Go meetup v3", movedA, "published"), sentAt)
	evl = waitEVL(t, ns, idA, "reminder recorded", func(e *sborv1.EventLifecycle) error {
		if e.Status.ReminderSentAt == nil || e.Status.ReminderCronJob != "" {
			return fmt.Errorf("reminderSentAt %v, CronJob %q", e.Status.ReminderSentAt, e.Status.ReminderCronJob)
		}
		return nil
	})
	if !evl.Status.ReminderSentAt.Time.Equal(sentAt) || evl.Spec.Version != 3 || evl.Spec.Title != "Go meetup v3" {
		t.Errorf("after the reminder: sentAt %v (want %v), spec v%d %q", evl.Status.ReminderSentAt, sentAt, evl.Spec.Version, evl.Spec.Title)
	}
	eventually(t, 30*time.Second, "CronJob removed after the reminder", func() error {
		err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: cronJobName}, &cj)
		if apierrors.IsNotFound(err) || (err == nil && !cj.DeletionTimestamp.IsZero()) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})

	// A redelivered old message changes nothing; the cancellation is final.
	p.send(cloudevent.TypeEventPublished, eventData(idA, 1, "Go meetup", startsA, "published"), time.Now())
	p.send(cloudevent.TypeEventCancelled, eventData(idA, 4, "Go meetup v3", movedA, "cancelled"), time.Now())
	evl = waitEVL(t, ns, idA, "A cancelled", func(e *sborv1.EventLifecycle) error {
		if e.Status.Phase != sborv1.PhaseCancelled {
			return fmt.Errorf("phase %s", e.Status.Phase)
		}
		return nil
	})
	if !evl.Spec.Cancelled || evl.Spec.Version != 4 || evl.Spec.Title != "Go meetup v3" {
		t.Errorf("cancelled spec = %+v", evl.Spec)
	}

	// Published two hours ahead, inside the 24h lead: the reminder Job runs at once.
	idB := uuid.New()
	p.send(cloudevent.TypeEventPublished, eventData(idB, 1, "Last minute", time.Now().UTC().Add(2*time.Hour), "published"), time.Now())
	evlB := waitEVL(t, ns, idB, "B's immediate Job", func(e *sborv1.EventLifecycle) error {
		if c := meta.FindStatusCondition(e.Status.Conditions, sborv1.ConditionReminderScheduled); c == nil || c.Reason != "ReminderJobCreated" {
			return fmt.Errorf("ReminderScheduled %+v", c)
		}
		return nil
	})
	var jobs batchv1.JobList
	if err := k8sClient.List(context.Background(), &jobs, client.InNamespace(ns), client.MatchingLabels{"sbor.dev/event-id": idB.String()}); err != nil || len(jobs.Items) != 1 {
		t.Fatalf("B's Jobs: %v %d", err, len(jobs.Items))
	}

	// Topics were checked through the admin API (no Strimzi here) and the condition says so.
	waitEVL(t, ns, idB, "TopicsReady", func(e *sborv1.EventLifecycle) error {
		if c := meta.FindStatusCondition(e.Status.Conditions, sborv1.ConditionTopicsReady); c == nil || c.Status != metav1.ConditionTrue || c.Reason != "TopicsExist" {
			return fmt.Errorf("TopicsReady %+v", c)
		}
		return nil
	})
	// Leader election held a Lease; Kubernetes Events went through events.k8s.io.
	var lease coordinationv1.Lease
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: DefaultLeaderElectionID}, &lease); err != nil || lease.Spec.HolderIdentity == nil {
		t.Errorf("leader Lease: %v %+v", err, lease.Spec)
	}
	var evs eventsv1.EventList
	if err := k8sClient.List(context.Background(), &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, e := range evs.Items {
		if e.ReportingController == EventRecorderName {
			reasons[e.Reason] = true
		}
	}
	for _, r := range []string{"CronJobCreated", "CronJobRescheduled", "CronJobDeleted", "PhaseCancelled", "ReminderJobCreated"} {
		if !reasons[r] {
			t.Errorf("no %s event (have %v)", r, reasons)
		}
	}

	// Restart: stop, delete B, publish C, start again with the same group. C appears; B does
	// not come back, because its message (before C's, same partition) was committed.
	op.stop(t)
	if err := k8sClient.Delete(context.Background(), evlB); err != nil {
		t.Fatal(err)
	}
	idC := uuid.New()
	p.send(cloudevent.TypeEventPublished, eventData(idC, 1, "After the restart", time.Now().UTC().Add(60*24*time.Hour), "published"), time.Now())
	startOperator(t, cfg)
	waitEVL(t, ns, idC, "C after the restart", func(*sborv1.EventLifecycle) error { return nil })
	time.Sleep(time.Second)
	if _, err := getEVL(ns, idB); !apierrors.IsNotFound(err) {
		t.Errorf("B was replayed after the restart: %v", err)
	}
}

func TestConfig(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	err := Config{}.withDefaults().validate()
	for _, want := range []string{"namespace", "Kafka brokers", "event service URL", "image"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate() = %v, want it to mention %q", err, want)
		}
	}
	t.Setenv("POD_NAMESPACE", "sbor")
	c := Config{KafkaBrokers: []string{"k:9092"}, EventServiceURL: "http://e", ReminderImage: "sbor:1", TopicPrefix: "p."}.withDefaults()
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if c.Namespace != "sbor" || c.ReminderLead != 24*time.Hour || c.ConsumerGroup != "sbor-operator" ||
		c.StrimziCluster != "sbor" || c.TopicPartitions != 3 || c.ReminderCommand != nil {
		t.Errorf("defaults = %+v", c)
	}
	if got := c.Topics(); len(got) != len(cloudevent.Topics) || got[0] != "p."+cloudevent.Topics[0] {
		t.Errorf("Topics() = %v", got)
	}
}
