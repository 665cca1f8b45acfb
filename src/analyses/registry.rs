//! The analyses kacap runs on every connection, in order. Adding one is a
//! module implementing `analysis::Analysis` and a line here; its note and
//! summary then reach every sink as `notes.<name>` and `findings.<name>`.

crate::analyses::analyses! {
    /// TCP keepalive: probes, episodes, inferred TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT.
    keepalive: crate::analyses::keepalive::Keepalive,
    /// Middlebox idle timeouts: silences survived and the one that killed.
    idle: crate::analyses::middlebox::IdleWatch,
    /// HTTP/1.x requests, responses and keep-alive.
    http: crate::analyses::http::HttpAnalysis,
    /// Unanswered data retransmitted until the sender gave up.
    retransmit: crate::analyses::retransmit::Retransmit,
    /// Application keepalives: HTTP/2 PING/GOAWAY, WebSocket, Redis, MySQL, encrypted rhythm.
    app: crate::analyses::app::AppAnalysis,
}

#[cfg(test)]
mod tests {
    #[test]
    fn per_flow_state_stays_small() {
        // What a connection costs while it is open or lingering: core state
        // plus every analysis's (boxed where only some connections need it).
        let size = std::mem::size_of::<crate::core::flows::Entry<super::PerFlow>>();
        assert!(size <= 336, "{size}");
    }
}
