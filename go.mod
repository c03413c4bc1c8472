module github.com/portcullis-sso/portcullis

go 1.26.8

require github.com/gorilla/securecookie v1.1.2

require (
	github.com/beevik/etree v1.8.1 // indirect
	github.com/crewjam/saml v0.6.3 // indirect
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/jonboulle/clockwork v0.5.0 // indirect
	github.com/russellhaering/goxmldsig v1.6.1 // indirect
	go.uber.org/multierr v1.10.0 // indirect
	go.uber.org/zap v1.28.0 // indirect
	golang.org/x/crypto v0.55.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)
