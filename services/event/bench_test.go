package event_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/services/event"
)

// BenchmarkCreatePublish measures the organizer's path through the HTTP API: create a draft,
// then publish it (a guarded UPDATE and its outbox row in one transaction). The relay is off
// (no brokers), so this is the API and PostgreSQL alone.
//
//	go test -run '^$' -bench CreatePublish -benchtime 2000x ./services/event/
func BenchmarkCreatePublish(b *testing.B) {
	s := startService(b, event.Config{MaxConns: 16})
	owner := organizer()
	body := eventBody("Bench", 48*time.Hour)
	publish := func() error {
		r, err := s.call("POST", "/api/events", body, owner)
		if err != nil {
			return err
		}
		if r.status != http.StatusCreated {
			return fmt.Errorf("create: %d %s", r.status, r.raw)
		}
		if r, err = s.call("POST", "/api/events/"+r.str("id")+"/publish", nil, owner); err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return fmt.Errorf("publish: %d %s", r.status, r.raw)
		}
		return nil
	}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if err := publish(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := publish(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
