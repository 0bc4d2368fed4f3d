package pgserver

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// The figures in the package report come from
//
//	go test -run '^$' -bench . -benchtime 5x ./internal/pgserver

// BenchmarkColdStart: initdb into an empty directory, start, first connection, stop.
func BenchmarkColdStart(b *testing.B) {
	requireBinaries(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		dir := dataDir(b)
		b.StartTimer()
		s, err := Start(ctx, Options{Dir: dir, Fast: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

// BenchmarkWarmStart: start an existing cluster until it accepts connections.
func BenchmarkWarmStart(b *testing.B) {
	requireBinaries(b)
	ctx := context.Background()
	dir := dataDir(b)
	s, err := Start(ctx, Options{Dir: dir, Fast: true})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if s, err = Start(ctx, Options{Dir: dir, Fast: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	s.Stop()
}

// BenchmarkStop: fast shutdown of an idle server.
func BenchmarkStop(b *testing.B) {
	requireBinaries(b)
	ctx := context.Background()
	dir := dataDir(b)
	for b.Loop() {
		b.StopTimer()
		s, err := Start(ctx, Options{Dir: dir, Fast: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateDatabase: CREATE DATABASE from template1 with each strategy (PostgreSQL 15
// defaults to WAL_LOG), Fast and not; the DROP is outside the timing.
func BenchmarkCreateDatabase(b *testing.B) {
	requireBinaries(b)
	ctx := context.Background()
	for _, fast := range []bool{true, false} {
		s, err := Start(ctx, Options{Dir: dataDir(b), Fast: fast})
		if err != nil {
			b.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err != nil {
			b.Fatal(err)
		}
		for _, strategy := range []string{"WAL_LOG", "FILE_COPY"} {
			b.Run(fmt.Sprintf("fast=%v/%s", fast, strategy), func(b *testing.B) {
				i := 0
				for b.Loop() {
					i++
					name := fmt.Sprintf("bench_%d", i)
					if _, err := conn.Exec(ctx, "CREATE DATABASE "+name+" STRATEGY "+strategy); err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if _, err := conn.Exec(ctx, "DROP DATABASE "+name); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
		conn.Close(ctx)
		s.Stop()
	}
}
