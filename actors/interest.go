package actors

// Interest is an optional part of a [Cluster]: a cluster that implements it
// is told which channels this node has streams on, so that it can listen
// to those channels only rather than to every channel (redisrelay
// subscribes to each channel while it is joined). The router calls Join
// when it spawns a channel actor for a join in cluster mode, and Leave when
// that actor ends; a channel is joined at most once at a time. Neither may
// block: the router calls them in its Receive.
//
// Join comes before the channel's first stream is added, so a cluster that
// reads, once listening, what was published since Join loses nothing in
// between.
type Interest interface {
	Join(channel string)
	Leave(channel string)
}

// interest is the hub's Cluster as an Interest, or nil.
func (h *Hub) interest() Interest {
	i, _ := h.cfg.Cluster.(Interest)
	return i
}

// joined and left are the router's calls; no-ops without an Interest.
func (r *router) joined(name string) {
	if i := r.hub.interest(); i != nil {
		i.Join(name)
	}
}

func (r *router) left(name string) {
	if i := r.hub.interest(); i != nil {
		i.Leave(name)
	}
}
