package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/saml"
)

// samlOptions are the flags of the SAML service provider: what
// saml.Config takes, so that serve needs no Go for it.
type samlOptions struct {
	idpMetadata string
	entityID    string
	spKey       string
	spCert      string
	fastAPIOPA  bool
}

func (o *samlOptions) register(fs *pflag.FlagSet) {
	fs.StringVar(&o.idpMetadata, "saml-idp-metadata", "", "SAML identity provider's metadata, an http(s) URL or a file; enables the SAML login (with --app-uri)")
	fs.StringVar(&o.entityID, "saml-entity-id", "", "this service provider's entity ID at the IdP (default: the metadata URL, <app-uri>/saml/metadata)")
	fs.StringVar(&o.spKey, "saml-sp-key", "", "this service provider's private key (PEM file)")
	fs.StringVar(&o.spCert, "saml-sp-cert", "", "this service provider's certificate (PEM file), published in its metadata")
	fs.BoolVar(&o.fastAPIOPA, "saml-fastapi-opa-claims", false, "give SAML identities fastapi-opa's claims (samlUserdata, samlNameId, ...) for policies written for it")
	// The names examples/saml reads.
	envAlias(fs, "saml-idp-metadata", "SAML_IDP_METADATA")
	envAlias(fs, "saml-sp-key", "SAML_SP_KEY")
	envAlias(fs, "saml-sp-cert", "SAML_SP_CERT")
}

func (o *samlOptions) configured() bool { return o.idpMetadata != "" }

// serviceProvider sets up the SAML login (--saml-idp-metadata), on the
// application URI and session keys the OIDC login uses too.
func (o *samlOptions) serviceProvider(ctx context.Context, a *authOptions, cookieKeys func() ([][]byte, error), logger *slog.Logger) (*saml.ServiceProvider, error) {
	if a.appURI == "" || o.spKey == "" || o.spCert == "" {
		return nil, configErrorf("--saml-idp-metadata needs --app-uri, --saml-sp-key and --saml-sp-cert (APP_URI, SAML_SP_KEY, SAML_SP_CERT)")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	md, err := saml.ReadMetadata(ctx, nil, o.idpMetadata)
	if err != nil {
		return nil, configErrorf("--saml-idp-metadata: %w", err)
	}
	key, cert, err := saml.LoadKeyPair(o.spKey, o.spCert)
	if err != nil {
		return nil, configErrorf("--saml-sp-key, --saml-sp-cert: %w", err)
	}
	keys, err := cookieKeys()
	if err != nil {
		return nil, err
	}
	sp, err := saml.New(saml.Config{
		EntityID:         o.entityID,
		IDPMetadata:      md,
		Key:              key,
		Certificate:      cert,
		FastAPIOPAClaims: o.fastAPIOPA,
		SessionConfig:    authn.SessionConfig{AppURI: a.appURI, CookieKeys: keys, InsecureCookies: a.insecureCookie, Logger: logger, Store: a.sessionStore.store},
	})
	if err != nil {
		return nil, configErrorf("--saml-idp-metadata: %w", err)
	}
	return sp, nil
}

// loadAPIKeys reads --api-keys: a YAML file, or env:NAME for the same YAML
// in the environment variable NAME (a Kubernetes Secret exposed as a
// variable, say), read with authn.APIKeysFromEnv.
func loadAPIKeys(spec string) ([]authn.APIKey, error) {
	name, ok := strings.CutPrefix(spec, "env:")
	if !ok {
		return authn.LoadAPIKeys(spec)
	}
	keys, err := authn.APIKeysFromEnv(os.LookupEnv, name)
	if err == nil && len(keys) == 0 {
		err = configErrorf("the environment variable %s is unset or empty", name)
	}
	return keys, err
}
