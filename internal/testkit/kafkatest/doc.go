// Package kafkatest gives every test package that needs Kafka a broker and
// isolated topics on it.
//
// Tests run against real Apache Kafka (DESIGN.md section 7): the behaviour
// Sbor relies on (acks=all, consumer-group rebalances and offsets, a broker
// that goes away and comes back) is Kafka's, not an imitation's. Starting a
// JVM per test would be far too slow, so Brokers starts one broker per test
// binary, lazily, the first time a test asks, and every test then works in
// its own uniquely named topics (Topic), so parallel tests, and test binaries
// sharing one cluster through KAFKA_BROKERS, never see each other's
// messages.
//
// Where the broker comes from, in order:
//   - KAFKA_BROKERS (comma-separated host:port list): an existing cluster;
//     nothing is started.
//   - Otherwise internal/testkit/kafkaserver runs Apache Kafka from its
//     Maven Central jars (hack/kafka/fetch.sh, cached outside the clone)
//     with the machine's Java, in a temporary directory.
//   - If that cannot be done (no Java, no Maven, no jars) the package prints
//     one line saying why and falls back to franz-go's in-process kfake, so
//     that a laptop without Java can still run the tests; set
//     SBOR_REQUIRE_KAFKA=1 (CI does) to fail the tests instead.
//     SBOR_KAFKA_FAKE=1 forces the kfake fallback, for a quick run.
//
// Call Main from TestMain so that the broker is stopped when the tests end:
//
//	func TestMain(m *testing.M) { kafkatest.Main(m) }
//
// Without it the JVM still dies with the test binary (kafkaserver starts it
// with Pdeathsig), but its temporary directory is left behind.
package kafkatest
