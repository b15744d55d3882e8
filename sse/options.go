package sse

import "time"

// Option sets a field of the [Event] that [New] builds.
type Option func(*Event)

// WithEvent names the event (the browser's addEventListener name).
func WithEvent(name string) Option { return func(e *Event) { e.Event = name } }

// WithID sets the event's id, which the browser resends as Last-Event-ID.
func WithID(id string) Option { return func(e *Event) { e.ID = id } }

// WithRetry sets the reconnection hint; [RetryZero] (or any negative)
// writes "retry: 0", zero writes none.
func WithRetry(d time.Duration) Option { return func(e *Event) { e.Retry = d } }

// New builds a valid event from data and options, the way the Python SDK's
// publish(data, event=, id=, retry=) does: a string or []byte goes raw, any
// other value becomes compact JSON (see [MarshalData]).
func New(data any, opts ...Option) (Event, error) {
	b, err := MarshalData(data)
	if err != nil {
		return Event{}, err
	}
	e := Event{Data: b}
	for _, o := range opts {
		o(&e)
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}
