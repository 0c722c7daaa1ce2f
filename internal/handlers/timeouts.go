package handlers

import "time"

// Timeouts are the http.Server phase timeouts.
type Timeouts struct {
	ReadHeader time.Duration // reading the request line and headers
	Read       time.Duration // reading the whole request, body included
	Write      time.Duration // from the end of the headers to the end of the response
	Idle       time.Duration // keep-alive idle time between requests
}
