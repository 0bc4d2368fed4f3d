package notification

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/web"
)

// FuzzListQuery: the list's limit and cursor parameters (the service's only request input
// besides the path) give a page size from 1 to MaxLimit and a position, or a 4xx; a cursor
// that parses encodes to one naming the same position.
func FuzzListQuery(f *testing.F) {
	f.Add("", "")
	f.Add("20", listCursor{CreatedAt: time.Now(), ID: uuid.New()}.encode())
	f.Add("0", "garbage")
	f.Add("101", strings.Repeat("A", 32))
	f.Add("1e3", "%00")
	f.Fuzz(func(t *testing.T, limit, cursor string) {
		n, err := parseLimit(limit)
		if err != nil {
			if e, ok := errs.As(err); !ok || web.StatusOf(e.Kind) != 400 {
				t.Fatalf("limit %q: %v", limit, err)
			}
		} else if n < 0 || n > MaxLimit || (limit != "" && n == 0) {
			t.Fatalf("limit %q gave %d", limit, n)
		}
		c, err := decodeCursor(cursor)
		if err != nil {
			if e, ok := errs.As(err); !ok || web.StatusOf(e.Kind) != 400 {
				t.Fatalf("cursor %q: %v", cursor, err)
			}
			return
		}
		// (base64 skips line breaks, so two spellings may name one position.)
		if again, err := decodeCursor(c.encode()); err != nil || !again.CreatedAt.Equal(c.CreatedAt) || again.ID != c.ID {
			t.Fatalf("cursor %q re-encodes to another position: %+v %v", cursor, again, err)
		}
	})
}
