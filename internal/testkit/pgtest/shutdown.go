package pgtest

// Shutdown stops the server this process started, if any, and removes its directory. Main
// calls it; internal/testkit.Main calls it for packages that also use Kafka.
func Shutdown() error { return shutdown() }
