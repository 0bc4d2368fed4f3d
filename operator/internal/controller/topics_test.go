package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/segmentio/kafka-go"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/testkit/kafkatest"
	"github.com/sbor-dev/sbor/operator/internal/testenv"
)

func TestKafkaTopicName(t *testing.T) {
	for topic, want := range map[string]string{
		"event.published":         "event.published",
		"t1a2b.ticket.checkin":    "t1a2b.ticket.checkin",
		"Prod_Event.published":    "prod-event.published-",
		"..weird--.event.updated": "weird--.event.updated-",
	} {
		got := KafkaTopicName(topic)
		if !strings.HasPrefix(got, want) {
			t.Errorf("KafkaTopicName(%q) = %q, want prefix %q", topic, got, want)
		}
		if got != topic && len(got) != len(want)+8 {
			t.Errorf("KafkaTopicName(%q) = %q: a changed name carries a hash", topic, got)
		}
	}
	if KafkaTopicName("A_b") == KafkaTopicName("a-b") {
		t.Errorf("two topics share a resource name")
	}
}

// TestTopics runs in order: first without Strimzi (Kafka's admin API), then with the stand-in
// Strimzi CRDs installed (KafkaTopic resources); once installed they stay for the package.
func TestTopics(t *testing.T) {
	disc, err := discovery.NewDiscoveryClientForConfig(testEnv.Config)
	if err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix()
	var topics []string
	for _, typ := range cloudevent.Topics {
		topics = append(topics, prefix+typ)
	}

	t.Run("admin API without Strimzi", func(t *testing.T) {
		if served, err := StrimziTopicsServed(disc); err != nil || served {
			t.Fatalf("Strimzi served before it was installed: %v %v", served, err)
		}
		brokers := kafkatest.Brokers(t)
		t.Logf("Kafka: %s at %v", kafkatest.BackendOf(t), brokers)
		m := &TopicManager{
			Client: k8sClient, Discovery: disc, Namespace: testNamespace, Cluster: "sbor",
			Brokers: brokers, Topics: topics, Partitions: 2, ReplicationFactor: 1,
			State: NewTopicState(), Log: logr.Discard(),
		}
		st := m.Ensure(context.Background())
		if st.Status != metav1.ConditionTrue || st.Reason != ReasonTopicsExist {
			t.Fatalf("status = %+v", st)
		}
		meta, err := (&kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}).
			Metadata(context.Background(), &kafka.MetadataRequest{Topics: topics})
		if err != nil {
			t.Fatal(err)
		}
		if len(meta.Topics) != len(topics) {
			t.Fatalf("%d topics in Kafka, want %d", len(meta.Topics), len(topics))
		}
		for _, tp := range meta.Topics {
			if tp.Error != nil || len(tp.Partitions) != 2 {
				t.Errorf("topic %s: err %v, %d partitions", tp.Name, tp.Error, len(tp.Partitions))
			}
		}
		// Idempotent: a second pass finds them.
		if st := m.Ensure(context.Background()); st.Status != metav1.ConditionTrue {
			t.Fatalf("second pass: %+v", st)
		}
		// No KafkaTopic resources on this path.
		if _, err := k8sClient.RESTMapper().RESTMapping(KafkaTopicGVK.GroupKind(), "v1"); err == nil {
			t.Errorf("KafkaTopic kind is known without Strimzi")
		}

		// No broker reachable: False with the admin API's error, no panic, no hang past the timeout.
		down := *m
		down.Brokers = []string{"127.0.0.1:1"}
		if st := down.Ensure(context.Background()); st.Status != metav1.ConditionFalse || st.Reason != ReasonKafkaAdminFailed {
			t.Fatalf("unreachable broker: %+v", st)
		}
	})

	t.Run("KafkaTopic resources with the Strimzi stand-in", func(t *testing.T) {
		if _, err := envtest.InstallCRDs(testEnv.Config, envtest.CRDInstallOptions{
			Paths: []string{testenv.StrimziStandInDir(testEnv.RepoRoot)}, ErrorIfPathMissing: true,
		}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "Strimzi API served", func() error {
			served, err := StrimziTopicsServed(disc)
			if err == nil && !served {
				err = fmt.Errorf("not served yet")
			}
			return err
		})
		m := &TopicManager{
			Client: k8sClient, Discovery: disc, Namespace: testNamespace, Cluster: "sbor-kafka",
			Brokers: nil, // this path never talks to Kafka itself
			Topics:  topics, Partitions: 3, ReplicationFactor: 2,
			State: NewTopicState(), Log: logr.Discard(),
		}
		var st TopicStatus
		eventually(t, 30*time.Second, "KafkaTopics created", func() error {
			st = m.Ensure(context.Background())
			if st.Reason != ReasonKafkaTopicsPending {
				return fmt.Errorf("status %+v", st)
			}
			return nil
		})
		if st.Status != metav1.ConditionFalse || !strings.Contains(st.Message, fmt.Sprintf("%d of %d", len(topics), len(topics))) {
			t.Fatalf("before Strimzi reconciled them: %+v", st)
		}

		var list unstructured.UnstructuredList
		list.SetGroupVersionKind(KafkaTopicGVK.GroupVersion().WithKind("KafkaTopicList"))
		if err := k8sClient.List(context.Background(), &list, client.InNamespace(testNamespace), client.MatchingLabels{StrimziClusterLabel: "sbor-kafka"}); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != len(topics) {
			t.Fatalf("%d KafkaTopic resources, want %d", len(list.Items), len(topics))
		}
		for _, kt := range list.Items {
			name, _, _ := unstructured.NestedString(kt.Object, "spec", "topicName")
			parts, _, _ := unstructured.NestedInt64(kt.Object, "spec", "partitions")
			replicas, _, _ := unstructured.NestedInt64(kt.Object, "spec", "replicas")
			if !strings.HasPrefix(name, prefix) || kt.GetName() != KafkaTopicName(name) || parts != 3 || replicas != 2 ||
				kt.GetLabels()[LabelManagedBy] != ManagedByValue {
				t.Errorf("KafkaTopic %s: topicName %q partitions %d replicas %d labels %v", kt.GetName(), name, parts, replicas, kt.GetLabels())
			}
		}

		// Play Strimzi's topic operator: mark all but one Ready.
		for i := range list.Items {
			if i == 0 {
				continue
			}
			setKafkaTopicReady(t, &list.Items[i])
		}
		st = m.Ensure(context.Background())
		if st.Status != metav1.ConditionFalse || !strings.Contains(st.Message, fmt.Sprintf("1 of %d", len(topics))) {
			t.Fatalf("one pending: %+v", st)
		}
		setKafkaTopicReady(t, &list.Items[0])
		st = m.Ensure(context.Background())
		if st.Status != metav1.ConditionTrue || st.Reason != ReasonKafkaTopicsReady || !strings.Contains(st.Message, "sbor-kafka") {
			t.Fatalf("all Ready: %+v", st)
		}

		// A deleted KafkaTopic comes back on the next pass.
		if err := k8sClient.Delete(context.Background(), &list.Items[2]); err != nil {
			t.Fatal(err)
		}
		if st := m.Ensure(context.Background()); st.Status != metav1.ConditionFalse {
			t.Fatalf("after a deletion: %+v", st)
		}
		again := &unstructured.Unstructured{}
		again.SetGroupVersionKind(KafkaTopicGVK)
		if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(&list.Items[2]), again); err != nil {
			t.Fatalf("KafkaTopic not recreated: %v", err)
		}

		// The runnable publishes the status to the controller's TopicState.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		m.Retry = 20 * time.Millisecond
		go func() { done <- m.Start(ctx) }()
		eventually(t, 10*time.Second, "state published", func() error {
			if got := m.State.Get(); got.Reason != ReasonKafkaTopicsPending {
				return fmt.Errorf("state %+v", got)
			}
			return nil
		})
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// setKafkaTopicReady writes the Ready condition Strimzi's topic operator would.
func setKafkaTopicReady(t *testing.T, kt *unstructured.Unstructured) {
	t.Helper()
	cur := &unstructured.Unstructured{}
	cur.SetGroupVersionKind(KafkaTopicGVK)
	if err := k8sClient.Get(context.Background(), client.ObjectKeyFromObject(kt), cur); err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedSlice(cur.Object, []any{map[string]any{
		"type": "Ready", "status": "True", "lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
	}}, "status", "conditions")
	if err := k8sClient.Status().Update(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
}
