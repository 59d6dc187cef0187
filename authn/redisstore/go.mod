module github.com/regoguard/regoguard/authn/redisstore

go 1.26.0

replace github.com/regoguard/regoguard => ../..

require (
	github.com/redis/go-redis/v9 v9.23.0
	github.com/regoguard/regoguard v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/coreos/go-oidc/v3 v3.21.0 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/regoguard/regoguard/internal/testkit v0.0.0-00010101000000-000000000000
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/oauth2 v0.38.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)

replace github.com/regoguard/regoguard/internal/testkit => ../../internal/testkit
