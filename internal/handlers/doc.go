// Package handlers is the HTTP edge of the service: the route table and its
// security groups (routes.go), and handlers that bind and validate a request,
// call the Open Banking service, map its errors to the OB error body (one
// HTTPErrorHandler) and respond. It holds no business rules and no database
// code: the rules are internal/openbanking's, the storage internal/postgres's.
package handlers
