package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/segmentio/kafka-go"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
)

// KafkaTopicGVK is Strimzi's KafkaTopic in the current kafka.strimzi.io/v1 API.
var KafkaTopicGVK = schema.GroupVersionKind{Group: "kafka.strimzi.io", Version: "v1", Kind: "KafkaTopic"}

// StrimziClusterLabel tells Strimzi's topic operator which Kafka cluster a KafkaTopic belongs to.
const StrimziClusterLabel = "strimzi.io/cluster"

// Reasons of the TopicsReady condition.
const (
	ReasonKafkaTopicsReady   = "KafkaTopicsReady"
	ReasonKafkaTopicsPending = "KafkaTopicsNotReady"
	ReasonKafkaTopicFailed   = "KafkaTopicFailed"
	ReasonTopicsExist        = "TopicsExist"
	ReasonKafkaAdminFailed   = "KafkaAdminFailed"
	ReasonDiscoveryFailed    = "DiscoveryFailed"
	ReasonNoKafkaBrokers     = "NoKafkaBrokers"
	ReasonNoStrimziCluster   = "NoStrimziCluster"
)

// TopicStatus is the platform's topic readiness, as the TopicsReady condition shows it.
type TopicStatus struct {
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

// TopicState holds the last TopicStatus and tells the EventLifecycle controller when it
// changes, so every event's TopicsReady condition follows.
type TopicState struct {
	mu      sync.Mutex
	status  TopicStatus
	changes chan event.GenericEvent
}

// NewTopicState returns an empty state (the condition reads Unknown until the first check).
func NewTopicState() *TopicState {
	return &TopicState{changes: make(chan event.GenericEvent, 1)}
}

// Get returns the last status.
func (s *TopicState) Get() TopicStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Set records st; a change wakes the controller (a notification already pending covers it, since
// the controller reads the latest status).
func (s *TopicState) Set(st TopicStatus) (changed bool) {
	s.mu.Lock()
	changed = s.status != st
	s.status = st
	s.mu.Unlock()
	if changed {
		select {
		case s.changes <- event.GenericEvent{Object: &sborv1.EventLifecycle{}}:
		default:
		}
	}
	return changed
}

// TopicManager makes sure the platform's topics exist: as Strimzi KafkaTopic resources when
// the cluster serves kafka.strimzi.io/v1 (Strimzi's topic operator then creates them in
// Kafka), through Kafka's admin API otherwise. It runs as a manager Runnable on the leader and
// checks again periodically, so a deleted KafkaTopic comes back and a Strimzi installed later
// takes over.
type TopicManager struct {
	// Client reads and creates KafkaTopic resources (as unstructured objects; their API is
	// optional).
	Client    client.Client
	Discovery discovery.DiscoveryInterface
	Namespace string
	// Cluster is the Strimzi Kafka cluster's name (the strimzi.io/cluster label).
	Cluster string
	// Brokers are used by the admin API path.
	Brokers []string
	// Topics are the full topic names (with the platform's prefix).
	Topics            []string
	Partitions        int
	ReplicationFactor int
	State             *TopicState
	Log               logr.Logger
	// Recheck is the period while the topics are ready (default 1m); Retry while they are not
	// (default 5s).
	Recheck, Retry time.Duration
}

// +kubebuilder:rbac:groups=kafka.strimzi.io,resources=kafkatopics,verbs=get;create

// Start checks the topics until ctx ends.
func (m *TopicManager) Start(ctx context.Context) error {
	recheck, retry := m.Recheck, m.Retry
	if recheck == 0 {
		recheck = time.Minute
	}
	if retry == 0 {
		retry = 5 * time.Second
	}
	for {
		st := m.Ensure(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if m.State.Set(st) {
			m.Log.Info("topics", "ready", st.Status, "reason", st.Reason, "message", st.Message)
		}
		wait := recheck
		if st.Status != metav1.ConditionTrue {
			wait = retry
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// NeedLeaderElection: only the leader provisions topics.
func (m *TopicManager) NeedLeaderElection() bool { return true }

// Ensure makes one pass: KafkaTopic resources when Strimzi is there, the admin API otherwise.
func (m *TopicManager) Ensure(ctx context.Context) TopicStatus {
	served, err := StrimziTopicsServed(m.Discovery)
	if err != nil {
		return TopicStatus{metav1.ConditionUnknown, ReasonDiscoveryFailed, "cannot tell whether Strimzi's KafkaTopic API is served: " + err.Error()}
	}
	if served {
		return m.ensureKafkaTopics(ctx)
	}
	return m.ensureWithAdminAPI(ctx)
}

// StrimziTopicsServed reports whether the API server serves kafka.strimzi.io/v1 kafkatopics.
func StrimziTopicsServed(d discovery.DiscoveryInterface) (bool, error) {
	list, err := d.ServerResourcesForGroupVersion(KafkaTopicGVK.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Name == "kafkatopics" {
			return true, nil
		}
	}
	return false, nil
}

// ensureKafkaTopics creates the missing KafkaTopic resources and reports whether Strimzi has
// made them all Ready. Existing ones are left as they are: partitions and settings a platform
// team tuned stay tuned.
func (m *TopicManager) ensureKafkaTopics(ctx context.Context) TopicStatus {
	if m.Cluster == "" {
		return TopicStatus{metav1.ConditionFalse, ReasonNoStrimziCluster, "Strimzi is installed but no Kafka cluster name is configured for the strimzi.io/cluster label"}
	}
	var pending []string
	created := 0
	for _, topic := range m.Topics {
		kt, err := m.getOrCreateKafkaTopic(ctx, topic)
		if err != nil {
			return TopicStatus{metav1.ConditionFalse, ReasonKafkaTopicFailed, err.Error()}
		}
		if kt == nil {
			created++
			pending = append(pending, topic)
			continue
		}
		if !conditionTrue(kt, "Ready") {
			pending = append(pending, topic)
		}
	}
	if len(pending) > 0 {
		sort.Strings(pending)
		return TopicStatus{metav1.ConditionFalse, ReasonKafkaTopicsPending, fmt.Sprintf(
			"%d of %d KafkaTopic resources of Kafka cluster %s are not Ready yet (Strimzi's topic operator creates them): %s",
			len(pending), len(m.Topics), m.Cluster, strings.Join(pending, ", "))}
	}
	return TopicStatus{metav1.ConditionTrue, ReasonKafkaTopicsReady, fmt.Sprintf(
		"all %d KafkaTopic resources of Kafka cluster %s are Ready", len(m.Topics), m.Cluster)}
}

// getOrCreateKafkaTopic returns the existing KafkaTopic for topic, or creates it and returns nil.
func (m *TopicManager) getOrCreateKafkaTopic(ctx context.Context, topic string) (*unstructured.Unstructured, error) {
	name := KafkaTopicName(topic)
	kt := &unstructured.Unstructured{}
	kt.SetGroupVersionKind(KafkaTopicGVK)
	err := m.Client.Get(ctx, client.ObjectKey{Namespace: m.Namespace, Name: name}, kt)
	if err == nil {
		if got, _, _ := unstructured.NestedString(kt.Object, "spec", "topicName"); got != "" && got != topic {
			return nil, fmt.Errorf("KafkaTopic %s exists for topic %q, not %q", name, got, topic)
		}
		return kt, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get KafkaTopic %s: %w", name, err)
	}
	kt = m.desiredKafkaTopic(topic)
	if err := m.Client.Create(ctx, kt); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create KafkaTopic %s: %w", name, err)
	}
	m.Log.Info("created KafkaTopic", "name", name, "topic", topic, "cluster", m.Cluster)
	return nil, nil
}

// desiredKafkaTopic is the KafkaTopic resource for topic.
func (m *TopicManager) desiredKafkaTopic(topic string) *unstructured.Unstructured {
	kt := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"topicName":  topic,
			"partitions": int64(m.Partitions),
			"replicas":   int64(m.ReplicationFactor),
		},
	}}
	kt.SetGroupVersionKind(KafkaTopicGVK)
	kt.SetNamespace(m.Namespace)
	kt.SetName(KafkaTopicName(topic))
	kt.SetLabels(map[string]string{
		StrimziClusterLabel: m.Cluster,
		LabelManagedBy:      ManagedByValue,
		LabelName:           "sbor",
	})
	return kt
}

// KafkaTopicName is the resource name of topic: topic names may hold characters (upper case,
// underscores) a Kubernetes name cannot, and spec.topicName keeps the real one.
func KafkaTopicName(topic string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(topic) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	name := strings.Trim(b.String(), "-.")
	if name != topic || len(name) > 200 {
		// A hash keeps two topics that sanitise alike apart.
		sum := sha256.Sum256([]byte(topic))
		name = strings.Trim(name[:min(len(name), 200)], "-.") + "-" + hex.EncodeToString(sum[:4])
	}
	return strings.TrimLeft(name, "-.")
}

// conditionTrue reports whether obj's status has condition typ with status "True".
func conditionTrue(obj *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == typ {
			return m["status"] == "True"
		}
	}
	return false
}

// ensureWithAdminAPI creates missing topics through Kafka's admin API and checks that each one
// is there.
func (m *TopicManager) ensureWithAdminAPI(ctx context.Context) TopicStatus {
	if len(m.Brokers) == 0 {
		return TopicStatus{metav1.ConditionFalse, ReasonNoKafkaBrokers, "Strimzi is not installed and no Kafka brokers are configured"}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kafkabus.EnsureTopics(ctx, m.Brokers, m.Topics, m.Partitions, m.ReplicationFactor); err != nil {
		return TopicStatus{metav1.ConditionFalse, ReasonKafkaAdminFailed, err.Error()}
	}
	missing, err := missingTopics(ctx, m.Brokers, m.Topics)
	if err != nil {
		return TopicStatus{metav1.ConditionFalse, ReasonKafkaAdminFailed, err.Error()}
	}
	if len(missing) > 0 {
		return TopicStatus{metav1.ConditionFalse, ReasonKafkaAdminFailed, "topics missing after creation: " + strings.Join(missing, ", ")}
	}
	return TopicStatus{metav1.ConditionTrue, ReasonTopicsExist, fmt.Sprintf(
		"all %d topics exist in Kafka (created through the admin API; Strimzi's KafkaTopic API is not served)", len(m.Topics))}
}

// missingTopics asks the cluster's metadata which of topics do not exist.
func missingTopics(ctx context.Context, brokers, topics []string) ([]string, error) {
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}
	resp, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("kafka metadata: %w", err)
	}
	found := map[string]bool{}
	for _, t := range resp.Topics {
		if t.Error == nil {
			found[t.Name] = true
		} else if !errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return nil, fmt.Errorf("kafka metadata of %s: %w", t.Name, t.Error)
		}
	}
	var missing []string
	for _, t := range topics {
		if !found[t] {
			missing = append(missing, t)
		}
	}
	return missing, nil
}
