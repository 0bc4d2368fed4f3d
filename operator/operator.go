// Package operator is `sbor operator`: a controller-runtime manager that mirrors the event
// service's Kafka announcements into EventLifecycle resources (sbor.dev/v1alpha1), keeps a
// reminder CronJob for each published event, and makes sure the platform's Kafka topics exist
// (as Strimzi KafkaTopic resources where Strimzi is installed, through Kafka's admin API
// otherwise). It also holds `sbor remind --event ID`, the command the reminder Job runs.
//
// The code follows the kubebuilder layout: the API in operator/api/v1alpha1, the reconcilers
// in operator/internal/controller, the Kafka consumer in operator/internal/eventsync, and the
// generated CRD and RBAC in config/ (hack/manifests.sh).
package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	ctrlcfg "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/sbor-dev/sbor/internal/platform/cloudevent"
	"github.com/sbor-dev/sbor/internal/platform/kafkabus"
	sborv1 "github.com/sbor-dev/sbor/operator/api/v1alpha1"
	"github.com/sbor-dev/sbor/operator/internal/controller"
	"github.com/sbor-dev/sbor/operator/internal/eventsync"
)

// Defaults of Config.
const (
	DefaultLeaderElectionID = "sbor-operator.sbor.dev"
	DefaultMetricsAddr      = ":8080"
	DefaultHealthProbeAddr  = ":8081"
	DefaultConsumerGroup    = "sbor-operator"
	DefaultStrimziCluster   = "sbor"
	DefaultReminderLead     = controller.DefaultReminderLead
	// EventRecorderName is the reportingController of the operator's Kubernetes Events.
	EventRecorderName = "sbor.dev/operator"
)

// Config configures the operator.
type Config struct {
	// Namespace is where the operator watches EventLifecycles and creates CronJobs, Jobs and
	// KafkaTopics (empty: the pod's own namespace).
	Namespace string
	// LeaderElection lets several replicas run with one active (a Lease named
	// LeaderElectionID in Namespace).
	LeaderElection   bool
	LeaderElectionID string
	// MetricsAddr serves Prometheus metrics (controller-runtime's and client-go's); "0" turns
	// it off.
	MetricsAddr string
	// HealthProbeAddr serves /healthz and /readyz; "0" turns it off.
	HealthProbeAddr string

	// KafkaBrokers, TopicPrefix and ConsumerGroup are where the event announcements come from;
	// the group's committed offsets survive restarts.
	KafkaBrokers  []string
	TopicPrefix   string
	ConsumerGroup string

	// EventServiceURL is what the reminder Job calls (POST /internal/events/{id}/remind).
	EventServiceURL string
	// ReminderImage and ReminderCommand run `<command> remind --event <id>` in the Job.
	// An empty ReminderCommand keeps the image's entrypoint (the sbor image's is the sbor
	// binary), so only the arguments are set.
	ReminderImage           string
	ReminderImagePullPolicy corev1.PullPolicy
	ReminderCommand         []string
	// ReminderServiceAccount runs the Job's pod (empty: the namespace's default; its token is
	// never mounted).
	ReminderServiceAccount string
	// ReminderPodLabels are added to the Job's pod (e.g. for a NetworkPolicy).
	ReminderPodLabels map[string]string
	// ReminderAttempts is how often one run of `sbor remind` tries (SBOR_REMIND_ATTEMPTS in
	// the Job; 0: its default).
	ReminderAttempts int
	// ReminderLead is how long before the start the reminder fires, for events whose resource
	// does not set spec.reminderLead (default 24h).
	ReminderLead time.Duration

	// DisableTopics turns off topic provisioning (the TopicsReady condition then stays away).
	DisableTopics          bool
	TopicPartitions        int
	TopicReplicationFactor int
	// StrimziCluster is the Kafka cluster's name in the strimzi.io/cluster label of the
	// KafkaTopic resources (default "sbor").
	StrimziCluster string

	// RESTConfig reaches the API server (nil: in-cluster, or $KUBECONFIG / ~/.kube/config).
	RESTConfig *rest.Config
}

// Leader election: the Lease, and the core/v1 Events client-go's resource lock still records
// ("became leader"); the operator's own Events use events.k8s.io.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

func (c Config) withDefaults() Config {
	if c.Namespace == "" {
		c.Namespace = podNamespace()
	}
	if c.LeaderElectionID == "" {
		c.LeaderElectionID = DefaultLeaderElectionID
	}
	if c.MetricsAddr == "" {
		c.MetricsAddr = DefaultMetricsAddr
	}
	if c.HealthProbeAddr == "" {
		c.HealthProbeAddr = DefaultHealthProbeAddr
	}
	if c.ConsumerGroup == "" {
		c.ConsumerGroup = DefaultConsumerGroup
	}
	if c.ReminderLead == 0 {
		c.ReminderLead = DefaultReminderLead
	}
	if c.TopicPartitions == 0 {
		c.TopicPartitions = 3
	}
	if c.TopicReplicationFactor == 0 {
		c.TopicReplicationFactor = 1
	}
	if c.StrimziCluster == "" {
		c.StrimziCluster = DefaultStrimziCluster
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.Namespace == "" {
		errs = append(errs, errors.New("operator: no namespace (set SBOR_OPERATOR_NAMESPACE or run in a pod)"))
	}
	if len(c.KafkaBrokers) == 0 {
		errs = append(errs, errors.New("operator: no Kafka brokers (KAFKA_BROKERS)"))
	}
	if c.EventServiceURL == "" {
		errs = append(errs, errors.New("operator: no event service URL for the reminder Job (SBOR_EVENT_URL)"))
	}
	if c.ReminderImage == "" {
		errs = append(errs, errors.New("operator: no image for the reminder Job (SBOR_OPERATOR_REMINDER_IMAGE)"))
	}
	if c.ReminderLead < 0 {
		errs = append(errs, errors.New("operator: the reminder lead time must be positive"))
	}
	return errors.Join(errs...)
}

// podNamespace is the namespace of the pod the operator runs in, if it runs in one.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Topics is the platform's topics with the prefix.
func (c Config) Topics() []string {
	out := make([]string, len(cloudevent.Topics))
	for i, t := range cloudevent.Topics {
		out[i] = c.TopicPrefix + t
	}
	return out
}

var setLoggerOnce sync.Once

// Scheme is the operator's scheme: the built-in types and sbor.dev/v1alpha1.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = sborv1.AddToScheme(s)
	return s
}

// Run runs the operator until ctx ends.
func Run(ctx context.Context, log *slog.Logger, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	log = log.With("component", "operator")
	logger := logr.FromSlogHandler(log.Handler())
	setLoggerOnce.Do(func() {
		ctrl.SetLogger(logger)
		klog.SetLogger(logger)
	})
	restCfg := cfg.RESTConfig
	if restCfg == nil {
		var err error
		if restCfg, err = ctrlconfig.GetConfig(); err != nil {
			return fmt.Errorf("operator: kubernetes API: %w", err)
		}
	}
	scheme := Scheme()
	registerConsumerMetrics()
	managed := labels.SelectorFromSet(labels.Set{controller.LabelManagedBy: controller.ManagedByValue})
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        logger,
		Metrics:                       metricsserver.Options{BindAddress: cfg.MetricsAddr},
		HealthProbeBindAddress:        cfg.HealthProbeAddr,
		LeaderElection:                cfg.LeaderElection,
		LeaderElectionID:              cfg.LeaderElectionID,
		LeaderElectionNamespace:       cfg.Namespace,
		LeaderElectionReleaseOnCancel: true,
		// The process runs one manager, but tests (and a restart inside one process) run Run
		// again: the controller's name is unique per manager, which is all metrics need.
		Controller: ctrlcfg.Controller{SkipNameValidation: ptr.To(true)},
		Cache: cache.Options{
			DefaultNamespaces: map[string]cache.Config{cfg.Namespace: {}},
			// Only the CronJobs and Jobs the operator made are cached, not every Job around.
			ByObject: map[client.Object]cache.ByObject{
				&batchv1.CronJob{}: {Label: managed},
				&batchv1.Job{}:     {Label: managed},
			},
		},
	})
	if err != nil {
		return fmt.Errorf("operator: manager: %w", err)
	}

	var topicState *controller.TopicState
	if !cfg.DisableTopics {
		disc, err := discovery.NewDiscoveryClientForConfig(restCfg)
		if err != nil {
			return fmt.Errorf("operator: discovery: %w", err)
		}
		topicState = controller.NewTopicState()
		if err := mgr.Add(&controller.TopicManager{
			Client: mgr.GetClient(), Discovery: disc, Namespace: cfg.Namespace,
			Cluster: cfg.StrimziCluster, Brokers: cfg.KafkaBrokers, Topics: cfg.Topics(),
			Partitions: cfg.TopicPartitions, ReplicationFactor: cfg.TopicReplicationFactor,
			State: topicState, Log: logger.WithName("topics"),
		}); err != nil {
			return err
		}
	}
	rec := &controller.EventLifecycleReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: scheme,
		Recorder: mgr.GetEventRecorder(EventRecorderName),
		Reminder: controller.ReminderJob{
			Image: cfg.ReminderImage, ImagePullPolicy: cfg.ReminderImagePullPolicy, Command: cfg.ReminderCommand,
			EventServiceURL: cfg.EventServiceURL, Attempts: cfg.ReminderAttempts,
			ServiceAccountName: cfg.ReminderServiceAccount, PodLabels: cfg.ReminderPodLabels,
		},
		DefaultLead: cfg.ReminderLead,
		Topics:      topicState,
	}
	if err := rec.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("operator: controller: %w", err)
	}
	if err := mgr.Add(&eventsync.Mirror{
		Client: mgr.GetClient(), Reader: mgr.GetAPIReader(), Namespace: cfg.Namespace,
		Brokers: cfg.KafkaBrokers, Group: cfg.ConsumerGroup, TopicPrefix: cfg.TopicPrefix,
		Log: log.With("runnable", "eventsync"),
	}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	log.Info("operator starting", "namespace", cfg.Namespace, "leader_election", cfg.LeaderElection,
		"group", cfg.ConsumerGroup, "topic_prefix", cfg.TopicPrefix, "reminder_lead", cfg.ReminderLead)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("operator: %w", err)
	}
	return nil
}

// registerConsumerMetrics adds the Kafka consumer's metrics (handled messages, lag) to the
// registry the manager serves, so the operator's /metrics shows them like every other
// target's. Run may run more than once in a process: a second registration is a no-op.
func registerConsumerMetrics() {
	for _, c := range kafkabus.Collectors() {
		if err := ctrlmetrics.Registry.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				panic(err) // two different metrics with one name: a programming error
			}
		}
	}
}
