package actors

import "time"

// Observer is told what the hub does, for metrics. Its methods are called
// from actor goroutines and must not block.
type Observer interface {
	// StreamOpened and StreamClosed bracket every stream.
	StreamOpened()
	StreamClosed(reason CloseReason)
	// Published is called once per event a channel fans out.
	Published(channel string)
	// Flushed is called once per write to a client, with the number of event
	// frames written and the time from the oldest one's publish to the
	// start of the write.
	Flushed(events int, oldest time.Duration)
	// Dropped counts frames discarded by a drop policy.
	Dropped(n int)
	// Resumed is called once per channel a stream resumes on: hit is false
	// when the id was unknown or too old and a reset was sent.
	Resumed(hit bool)
	// ChannelsChanged reports the number of live channel actors.
	ChannelsChanged(n int)
}

type nopObserver struct{}

func (nopObserver) StreamOpened()              {}
func (nopObserver) StreamClosed(CloseReason)   {}
func (nopObserver) Published(string)           {}
func (nopObserver) Flushed(int, time.Duration) {}
func (nopObserver) Dropped(int)                {}
func (nopObserver) Resumed(bool)               {}
func (nopObserver) ChannelsChanged(int)        {}

// HistoryObserver is what an [Observer] may also implement to be told about
// the histories of memory mode. Its methods are called from actor
// goroutines and must not block.
type HistoryObserver interface {
	// HistoryEvicted counts n events that left a channel's history for
	// reason.
	HistoryEvicted(reason EvictReason, n int)
	// HistoryBytes reports what the histories of all channels hold, as
	// counted against [Config].HistoryBudget (only while a budget is set).
	HistoryBytes(n int64)
}

type nopHistoryObserver struct{}

func (nopHistoryObserver) HistoryEvicted(EvictReason, int) {}
func (nopHistoryObserver) HistoryBytes(int64)              {}
