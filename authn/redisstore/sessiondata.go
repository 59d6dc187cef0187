package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/regoguard/regoguard/authn"
)

var _ authn.SessionDataStore = (*Store)(nil)

// SaveSession implements [authn.SessionDataStore]: SET with an expiry, under
// Prefix + "session:" + id. The data is sealed by the browser flow: Redis
// holds no readable token.
func (s *Store) SaveSession(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	ms, err := checkArgs(id, ttl)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.result("save session", s.client.Set(ctx, s.prefix+"session:"+id, data, time.Duration(ms)*time.Millisecond).Err())
}

// LoadSession implements [authn.SessionDataStore]: [authn.ErrSessionDataNotFound]
// when Redis holds nothing under id, another error when it cannot answer.
func (s *Store) LoadSession(ctx context.Context, id string) ([]byte, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	data, err := s.client.Get(ctx, s.prefix+"session:"+id).Bytes()
	if errors.Is(err, redis.Nil) {
		_ = s.result("load session", nil) // Redis answered
		return nil, authn.ErrSessionDataNotFound
	}
	if err := s.result("load session", err); err != nil {
		return nil, err
	}
	return data, nil
}

// DeleteSession implements [authn.SessionDataStore].
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.result("delete session", s.client.Del(ctx, s.prefix+"session:"+id).Err())
}
