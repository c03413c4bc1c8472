module github.com/portcullis-sso/portcullis

go 1.26.8

require github.com/gorilla/securecookie v1.1.2
