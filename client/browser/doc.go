// Package browser holds the hub's browser client, squall.js, and its
// TypeScript types, squall.d.ts, embedded in the binary; [Handler] serves
// them (httpedge mounts it at GET /squall.js and GET /squall.d.ts).
//
// squall.js is an ES module without dependencies or a build step: a page
// imports it from its hub with <script type="module">. Its SquallStream
// wraps EventSource and owns every reconnect, so that each new EventSource
// resumes from the last id seen (the lastEventId query parameter); see
// docs/browser.md.
//
// # Concurrency
//
// The files are read once, at package initialisation; [Handler] is safe
// for concurrent use and starts no goroutine.
//
// # Shutdown
//
// Nothing to stop.
package browser
