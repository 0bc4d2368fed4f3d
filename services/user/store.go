package user

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sbor-dev/sbor/internal/platform/db"
	"github.com/sbor-dev/sbor/internal/platform/errs"
	"github.com/sbor-dev/sbor/internal/platform/identity"
)

// Store is the user service's PostgreSQL storage.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a store over pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

var errNotFound = errs.New(errs.NotFound, "user_not_found", "no such user")

// userRow is the users table's shape.
type userRow struct {
	ID           uuid.UUID `db:"id"`
	Email        string    `db:"email"`
	Name         string    `db:"name"`
	Role         string    `db:"role"`
	PasswordHash string    `db:"password_hash"`
	CreatedAt    time.Time `db:"created_at"`
}

func (r userRow) toUser() User {
	return User{ID: r.ID, Email: r.Email, Name: r.Name, Role: identity.Role(r.Role), PasswordHash: r.PasswordHash, CreatedAt: r.CreatedAt}
}

const userColumns = "id, email, name, role, password_hash, created_at"

func (s *Store) queryUser(ctx context.Context, q pgx.Tx, sql string, args ...any) (User, error) {
	var rows pgx.Rows
	var err error
	if q != nil {
		rows, err = q.Query(ctx, sql, args...)
	} else {
		rows, err = s.pool.Query(ctx, sql, args...)
	}
	if err != nil {
		return User{}, db.Unavailable(err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[userRow])
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, errNotFound
	}
	if err != nil {
		return User{}, db.Unavailable(err)
	}
	return r.toUser(), nil
}

// Create inserts u; a taken email is a Conflict.
func (s *Store) Create(ctx context.Context, u User) (User, error) {
	created, err := s.queryUser(ctx, nil,
		`INSERT INTO users (id, email, name, role, password_hash) VALUES ($1, $2, $3, $4, $5) RETURNING `+userColumns,
		u.ID, u.Email, u.Name, string(u.Role), u.PasswordHash)
	if db.IsUniqueViolation(err, "users_email_key") {
		return User{}, errs.New(errs.Conflict, "email_taken", "an account with this email already exists")
	}
	return created, err
}

// ByID returns a user.
func (s *Store) ByID(ctx context.Context, id uuid.UUID) (User, error) {
	return s.queryUser(ctx, nil, `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
}

// ByEmail returns a user by normalised email.
func (s *Store) ByEmail(ctx context.Context, email string) (User, error) {
	return s.queryUser(ctx, nil, `SELECT `+userColumns+` FROM users WHERE email = $1`, email)
}

// SetRole changes a user's role and returns the user.
func (s *Store) SetRole(ctx context.Context, id uuid.UUID, role identity.Role) (User, error) {
	return s.queryUser(ctx, nil,
		`UPDATE users SET role = $2, updated_at = now() WHERE id = $1 RETURNING `+userColumns, id, string(role))
}

// refreshToken is a stored refresh token.
type refreshToken struct {
	Hash     []byte
	FamilyID uuid.UUID
	UserID   uuid.UUID
	Expires  time.Time
}

// AddRefreshToken stores a new refresh token.
func (s *Store) AddRefreshToken(ctx context.Context, t refreshToken) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) VALUES ($1, $2, $3, $4)`,
		t.Hash, t.FamilyID, t.UserID, t.Expires)
	return db.Unavailable(err)
}

// errRefreshReused means a spent token came back: somebody holds a copy.
var errRefreshReused = errors.New("refresh token reused")

// RotateRefreshToken spends the token with hash old and stores next in the same family, in
// one transaction. Spending is guarded in SQL so that of two concurrent uses only one wins.
// A token that was already spent revokes its whole family (the revocation is committed) and
// returns errRefreshReused; an unknown, expired or revoked one returns errNotFound.
func (s *Store) RotateRefreshToken(ctx context.Context, old []byte, next func(family, user uuid.UUID) refreshToken) (uuid.UUID, error) {
	var userID uuid.UUID
	var reused bool
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var family uuid.UUID
		err := tx.QueryRow(ctx, `
			UPDATE refresh_tokens SET used_at = now()
			WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
			RETURNING family_id, user_id`, old).Scan(&family, &userID)
		if errors.Is(err, pgx.ErrNoRows) {
			var usedAt *time.Time
			err := tx.QueryRow(ctx, `SELECT family_id, used_at FROM refresh_tokens WHERE token_hash = $1`, old).Scan(&family, &usedAt)
			if errors.Is(err, pgx.ErrNoRows) {
				return errNotFound
			}
			if err != nil {
				return err
			}
			if usedAt != nil {
				reused = true
				_, err = tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL`, family)
				return err
			}
			return errNotFound
		}
		if err != nil {
			return err
		}
		t := next(family, userID)
		_, err = tx.Exec(ctx,
			`INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) VALUES ($1, $2, $3, $4)`,
			t.Hash, t.FamilyID, t.UserID, t.Expires)
		return err
	})
	if err != nil {
		return uuid.Nil, db.Unavailable(err)
	}
	if reused {
		return uuid.Nil, errRefreshReused
	}
	return userID, nil
}

// RevokeFamilyOf revokes every token in the family of the token with this hash.
func (s *Store) RevokeFamilyOf(ctx context.Context, hash []byte) error {
	_, err := s.pool.Exec(ctx, `
		UPDATE refresh_tokens SET revoked_at = now()
		WHERE revoked_at IS NULL AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)`, hash)
	return db.Unavailable(err)
}

// CountAttempt adds one to the fixed-window counter of key and returns the new count. The
// increment is a single upsert, so a burst of concurrent attempts is counted exactly.
func (s *Store) CountAttempt(ctx context.Context, key string, window time.Duration) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `
		INSERT INTO login_attempts (key, window_start, attempts)
		VALUES ($1, date_bin(make_interval(secs => $2), now(), timestamptz '2000-01-01'), 1)
		ON CONFLICT (key, window_start) DO UPDATE SET attempts = login_attempts.attempts + 1
		RETURNING attempts`, key, window.Seconds()).Scan(&n)
	return n, db.Unavailable(err)
}

// ResetAttempts clears a key's counters (after a successful login).
func (s *Store) ResetAttempts(ctx context.Context, key string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM login_attempts WHERE key = $1`, key)
	return db.Unavailable(err)
}

// Prune deletes expired refresh tokens and old attempt windows.
func (s *Store) Prune(ctx context.Context) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'`); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM login_attempts WHERE window_start < now() - interval '1 day'`)
	return err
}
