// Package kafkaserver runs a real, single-node Apache Kafka broker for tests.
//
// Why a real broker: Sbor's guarantees (the outbox relay never loses a
// purchase, consumers are idempotent across redelivery, a Kafka outage never
// fails a purchase) depend on what Apache Kafka actually does: acks=all,
// consumer-group rebalances, offsets, a broker that goes away and comes back.
// An in-process imitation is fine for `make dev` (DESIGN.md section 2) but
// tests must run against the real thing (section 7), without Docker and
// without a download the build cannot make.
//
// How: hack/kafka/fetch.sh resolves the broker's jars (org.apache.kafka:kafka_2.13
// and its runtime dependencies, at the version set in hack/kafka/pom.xml) with
// Maven into a cache outside the clone, once per version. Start runs
// kafka.Kafka from those jars with the machine's Java (17 or newer) as a
// combined KRaft broker+controller on two free loopback ports, with its data,
// configuration and log under Options.Dir.
//
// Startup time matters, because every test binary that needs Kafka starts one,
// so Start avoids the work it can:
//   - Storage is formatted once per Kafka version into a template next to the
//     cached jars (kafka.tools.StorageTool in its own JVM costs seconds on a
//     2-core machine); each new broker copies meta.properties and
//     bootstrap.checkpoint from it.
//   - The first broker to shut down cleanly leaves a JVM class-data-sharing
//     archive (AppCDS, -XX:ArchiveClassesAtExit) next to the jars, keyed by the
//     Java runtime and the class path; later brokers map it
//     (-XX:SharedArchiveFile), which roughly halves JVM start-up.
//   - The JVM is small and starts fast (serial GC, C1 only, 512 MiB heap), and
//     the broker keeps few threads and small internal topics.
//
// The process runs in its own process group with Pdeathsig=SIGKILL, started
// from a goroutine locked to an OS thread that never exits (Pdeathsig fires
// when the forking thread dies), so the JVM dies with the test binary even
// when Stop is never called. Stop shuts it down gracefully, Kill simulates a
// crash, and Restart brings it back on the same ports and data, which is what
// chaos tests need.
//
// Most tests should not use this package directly: internal/testkit/kafkatest
// shares one broker per test binary and hands out isolated topics.
package kafkaserver
