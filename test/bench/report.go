package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// writeReport prints the table and writes it, with the JSON, under dir:
// bench-<time>.{txt,json} and bench-latest.{txt,json}.
func writeReport(dir string, res result) error {
	table := renderTable(res)
	fmt.Print(table)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	stamp := res.StartedAt.Format("20060102T150405Z")
	for _, name := range []string{"bench-" + stamp, "bench-latest"} {
		if err := os.WriteFile(filepath.Join(dir, name+".json"), append(raw, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(table+res.Summary+"\n"), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "bench: results in %s\n", filepath.Join(dir, "bench-"+stamp+".{txt,json}"))
	return nil
}

func renderTable(res result) string {
	var b strings.Builder
	m := res.Machine
	fmt.Fprintf(&b, "\nMachine: %d CPUs, %s; load average %.2f at start, %.2f at end; %s\n", m.NProc, m.CPU, m.LoadStart[0], m.LoadEnd[0], m.GoVersion)
	fmt.Fprintf(&b, "PostgreSQL %s: fsync=%s synchronous_commit=%s full_page_writes=%s\n",
		res.Postgres["server_version"], res.Postgres["fsync"], res.Postgres["synchronous_commit"], res.Postgres["full_page_writes"])
	gomaxprocs := res.Config.Env["GOMAXPROCS"]
	if gomaxprocs == "" {
		gomaxprocs = "Go's default"
	}
	fmt.Fprintf(&b, "Run: %d clients, %d buyers, peak %s, total %.0fs; services' GOMAXPROCS: %s\n\n", res.Config.Clients, res.Config.Buyers, res.Config.Duration, res.Seconds, gomaxprocs)

	b.WriteString("| run | clients | requests | ok/s | p50 ms | p95 ms | p99 ms | max ms | answers |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	rows := append(append([]stats{}, res.Runs...), res.Limit, res.Direct, res.Gateway, res.Relay)
	for _, s := range rows {
		name := s.Name
		if s.TargetPS > 0 {
			name += fmt.Sprintf(" (%.0f/s paced)", s.TargetPS)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.0f | %.1f | %.1f | %.1f | %.1f | %s |\n",
			name, s.Clients, s.Requests, s.PerSecond, s.P50Ms, s.P95Ms, s.P99Ms, s.MaxMs, outcomes(s.Outcomes))
	}
	fmt.Fprintf(&b, "\nEnd-to-end / limit: %.2f. Gateway overhead (GET /api/tickets): %.1f %% of throughput; a bare TCP relay's, in the same rounds: %.1f %% (per round, direct: %v/s; via the gateway: %v/s; via the relay: %v/s).\n\n",
		res.Ratio, res.OverheadPct, res.RelayOverheadPct, res.Direct.RoundsPS, res.Gateway.RoundsPS, res.Relay.RoundsPS)
	b.WriteString(renderBreakdowns(res.Breakdowns))

	b.WriteString("| type | quantity | issued (201) | sold | rows | ticket.purchased | oversold | check |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|\n")
	for _, c := range res.Checks {
		ok := "ok"
		if !c.OK {
			ok = "FAILED"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s |\n", c.Name, c.Quantity, c.Issued, c.Sold, c.Rows, c.Messages, c.Oversold, ok)
	}

	b.WriteString("\n| purchase → notification | tickets | p50 ms | p99 ms | max ms | missing |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, d := range res.Notifications {
		ge := ""
		if d.AtLeast {
			ge = "≥ "
		}
		fmt.Fprintf(&b, "| %s | %d | %s%.0f | %s%.0f | %s%.0f | %d |\n", d.Run, d.Tickets, ge, d.P50Ms, ge, d.P99Ms, ge, d.MaxMs, d.Missing)
	}

	fmt.Fprintf(&b, "\nOf which outbox → Kafka (the ticket service's relay): p50 %.0f ms, p99 %.0f ms, max %.0f ms over %d messages.\n",
		res.RelayLag.P50Ms, res.RelayLag.P99Ms, res.RelayLag.MaxMs, res.RelayLag.Published)
	b.WriteString("\n| service | idle RSS MiB | peak RSS MiB (VmHWM) |\n|---|---:|---:|\n")
	for _, name := range serviceNames {
		u := res.Memory[name]
		fmt.Fprintf(&b, "| %s | %.1f | %.1f |\n", name, u.IdleMiB, u.PeakMiB)
	}
	b.WriteString("\n")
	return b.String()
}

func outcomes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s × %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
