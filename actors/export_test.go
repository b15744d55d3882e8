package actors

// SentTo returns how many messages were sent to the actor of channel (0
// when it has none): a test that must know a message is queued there waits
// for this count.
func SentTo(h *Hub, channel string) uint64 {
	h.chansMu.RLock()
	c := h.chans[channel]
	h.chansMu.RUnlock()
	if c == nil {
		return 0
	}
	return c.sent.Load() &^ routedEnded
}
