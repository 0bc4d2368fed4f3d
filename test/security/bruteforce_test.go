package security

import (
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sbor-dev/sbor/test/platform"
)

// fromAddress returns an HTTP client whose connections come from a loopback source address
// other than 127.0.0.1 (Linux routes all of 127.0.0.0/8 to lo): here, the trusted proxy.
func fromAddress(ip string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 64}}
}

// burst sends n logins at once, the i-th as c(i), and counts the answers by status; every
// 429 must say when to retry.
func burst(t *testing.T, n int, login func(i int) reply) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := login(i)
			mu.Lock()
			defer mu.Unlock()
			if r.Err != nil {
				counts[-1]++
				return
			}
			counts[r.Status]++
			if r.Status == 429 && (r.Header.Get("Retry-After") == "" || r.JSON["code"] != "too_many_attempts") {
				t.Errorf("a 429 without Retry-After or code: %v %s", r.Header, r.Body)
			}
		}()
	}
	wg.Wait()
	return counts
}

// TestBruteForce holds the login limits under bursts: per account whatever addresses the
// attempts come from, per client address whatever accounts they try, and a rotating
// X-Forwarded-For from an untrusted peer does not make new addresses. The gateway trusts
// only 127.0.0.2 as a proxy; the test's "proxy" client connects from there.
func TestBruteForce(t *testing.T) {
	t.Parallel()
	const perIP, perAccount = 20, 5
	p := startPlatform(t, map[string]string{
		"SBOR_TRUSTED_PROXIES": "127.0.0.2",
		// Login windows are fixed (multiples of the window since the epoch): a long one never
		// starts anew in the middle of the bursts and resets their counts.
		"SBOR_LOGIN_WINDOW":          "720h",
		"SBOR_LOGIN_MAX_PER_IP":      fmt.Sprint(perIP),
		"SBOR_LOGIN_MAX_PER_ACCOUNT": fmt.Sprint(perAccount),
	})
	proxy := fromAddress("127.0.0.2")
	behind := func(ip string) *caller {
		return &caller{p: p, name: ip, via: proxy, headers: map[string]string{"X-Forwarded-For": ip}}
	}
	signUpBehind := func(name, ip string) *caller {
		return signUpVia(t, p, proxy, name, "X-Forwarded-For", ip)
	}
	victim := signUpBehind("Victim", "198.51.100.1")
	bystander := signUpBehind("Bystander", "198.51.100.2")
	login := func(c *caller, email, pw string) reply {
		return c.send("POST", "/api/auth/login", map[string]string{"email": email, "password": pw})
	}

	// Per account: 40 guesses from 40 addresses at once.
	counts := burst(t, 40, func(i int) reply {
		return login(behind(fmt.Sprintf("203.0.113.%d", i+1)), victim.email, fmt.Sprintf("guess-number-%d", i))
	})
	t.Logf("40 guesses at one account from 40 addresses: %v", counts)
	if counts[401] > perAccount || counts[401]+counts[429] != 40 {
		t.Errorf("per-account limit %d did not hold: %v", perAccount, counts)
	}
	if r := login(behind("203.0.113.200"), victim.email, password); r.Status != 429 {
		t.Errorf("the right password of a locked account: %d, want 429 until the window ends", r.Status)
	}
	if r := login(behind("203.0.113.200"), bystander.email, password); r.Status != 200 {
		t.Errorf("another account from the same address: %d, want 200", r.Status)
	}

	// Per address: 60 logins to 60 accounts from one address at once.
	counts = burst(t, 60, func(i int) reply {
		return login(behind("192.0.2.50"), fmt.Sprintf("nobody-%d-%s@example.com", i, platform.RandomHex(3)), "guess-password-1")
	})
	t.Logf("60 logins to unknown accounts from one address: %v", counts)
	if counts[401] > perIP || counts[401]+counts[429] != 60 {
		t.Errorf("per-address limit %d did not hold: %v", perIP, counts)
	}
	if r := login(behind("192.0.2.50"), bystander.email, password); r.Status != 429 {
		t.Errorf("a good login from the blocked address: %d, want 429", r.Status)
	}
	if r := login(behind("192.0.2.51"), bystander.email, password); r.Status != 200 {
		t.Errorf("a good login from another address: %d, want 200", r.Status)
	}

	// An untrusted peer cannot mint addresses with X-Forwarded-For: all 40 count as its own.
	direct := func(i int) *caller {
		return &caller{p: p, name: "spoofer", headers: map[string]string{"X-Forwarded-For": fmt.Sprintf("10.%d.0.1", i)}}
	}
	counts = burst(t, 40, func(i int) reply {
		return login(direct(i), fmt.Sprintf("spoof-%d-%s@example.com", i, platform.RandomHex(3)), "guess-password-1")
	})
	t.Logf("40 logins with rotating X-Forwarded-For from an untrusted peer: %v", counts)
	if counts[401] > perIP || counts[401]+counts[429] != 40 {
		t.Errorf("X-Forwarded-For from an untrusted peer bypassed the per-address limit: %v", counts)
	}
}

// testEnumerationTiming compares a wrong password for a real account with any password for
// an unknown email: the same answer, and about the same time (the unknown email is checked
// against a dummy hash). Medians of interleaved samples, compared loosely: a machine under
// load is noisy, but skipping the hash would make the unknown email several times faster.
func testEnumerationTiming(t *testing.T, p *platform.Platform) {
	accounts := []*caller{signUp(t, p, "Tim"), signUp(t, p, "Tom"), signUp(t, p, "Tia"), signUp(t, p, "Ted")}
	anon := anonymous(p)
	var known, unknown []time.Duration
	var first [2]reply
	for i := range 16 {
		wrong := anon.send("POST", "/api/auth/login", map[string]string{"email": accounts[i%4].email, "password": "wrong-password-1"})
		ghost := anon.send("POST", "/api/auth/login", map[string]string{"email": "ghost-" + platform.RandomHex(4) + "@example.com", "password": "wrong-password-1"})
		if wrong.Status != 401 || ghost.Status != 401 {
			t.Fatalf("wrong password %d, unknown email %d; want 401 both", wrong.Status, ghost.Status)
		}
		if i == 0 {
			first = [2]reply{wrong, ghost}
		}
		known, unknown = append(known, wrong.Took), append(unknown, ghost.Took)
	}
	if first[0].JSON["code"] != first[1].JSON["code"] || first[0].JSON["detail"] != first[1].JSON["detail"] {
		t.Errorf("unknown email answered differently: %s / %s", first[0].Body, first[1].Body)
	}
	median := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	mk, mu := median(known), median(unknown)
	ratio := float64(mu) / float64(mk)
	t.Logf("login timing: wrong password median %s, unknown email median %s (ratio %.2f)", mk, mu, ratio)
	if ratio < 0.4 || ratio > 2.5 {
		t.Errorf("unknown email takes %.2f× a wrong password's time: an attacker can tell accounts apart", ratio)
	}
}
