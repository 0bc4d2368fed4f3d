package ticket_test

import (
	"flag"
	"testing"

	"github.com/sbor-dev/sbor/internal/testkit"
)

// integrationParallelism is how many integration tests run at once unless -test.parallel is
// given. They spend their time waiting on PostgreSQL, Kafka and HTTP, not on the CPU, so the
// default of GOMAXPROCS (2 on CI) would leave the machine mostly idle.
const integrationParallelism = "4"

// TestMain runs the tests with more parallelism than the default and stops the PostgreSQL
// server and Kafka broker the harnesses started.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", integrationParallelism)
	}
	testkit.Main(m)
}
