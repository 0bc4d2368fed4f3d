package kafkatest

// Shutdown stops the broker this process started, if any. Main calls it;
// internal/testkit.Main calls it for packages that also use PostgreSQL.
func Shutdown() { defaultEnv.close() }
