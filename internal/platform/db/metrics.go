package db

import (
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports the statistics of every registered pool when Prometheus scrapes
// (one collector for the process, so `sbor all` reports each service's pool).
type poolCollector struct {
	mu    sync.Mutex
	pools map[string]*pgxpool.Pool
}

var (
	pools         = &poolCollector{pools: map[string]*pgxpool.Pool{}}
	registerPools sync.Once
)

var (
	poolConns = prometheus.NewDesc("sbor_db_pool_connections", "Connections of the service's pool, by state.",
		[]string{"service", "state"}, nil)
	poolMax      = prometheus.NewDesc("sbor_db_pool_max_connections", "The pool's size limit.", []string{"service"}, nil)
	poolAcquires = prometheus.NewDesc("sbor_db_pool_acquires_total", "Connections acquired from the pool.", []string{"service"}, nil)
	poolWaits    = prometheus.NewDesc("sbor_db_pool_empty_acquires_total", "Acquires that had to wait for a connection.", []string{"service"}, nil)
	poolWait     = prometheus.NewDesc("sbor_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", []string{"service"}, nil)
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolMax, poolAcquires, poolWaits, poolWait} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for service, pool := range c.pools {
		collectPool(ch, service, pool)
	}
}

func collectPool(ch chan<- prometheus.Metric, service string, pool *pgxpool.Pool) {
	s := pool.Stat()
	c := struct{ service string }{service}
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.AcquiredConns()), c.service, "acquired")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.IdleConns()), c.service, "idle")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.ConstructingConns()), c.service, "constructing")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()), c.service)
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()), c.service)
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.EmptyAcquireCount()), c.service)
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.AcquireDuration().Seconds(), c.service)
}

// RegisterPoolMetrics exports pool statistics labelled with service. It returns a function
// that stops exporting them (when the pool closes).
func RegisterPoolMetrics(service string, pool *pgxpool.Pool) func() {
	registerPools.Do(func() { prometheus.MustRegister(pools) })
	pools.mu.Lock()
	pools.pools[service] = pool
	pools.mu.Unlock()
	return func() {
		pools.mu.Lock()
		defer pools.mu.Unlock()
		if pools.pools[service] == pool {
			delete(pools.pools, service)
		}
	}
}
