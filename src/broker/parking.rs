//! Parked clients: whose further commands wait, and where their RecvQs wait meanwhile.
//!
//! One mechanism for every "this client's next commands wait, everyone else goes on": a
//! command whose answer comes back from the blocking pool (OPER's password check), and later
//! flood control and history reads. While a client is parked the broker does not serve its
//! RecvQ, so its replies leave in the order of its commands by construction.
//!
//! Invariant: a RecvQ that is posted (has events and is known to the broker) is in exactly one
//! place: the inbox channel, the broker's round, the turn being served, or [`Parking`]'s held
//! queues. A parked client's queue found in the round is moved here; unparking moves it back.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::inbox::RecvShared;
use super::ClientId;

/// The parked clients and their held RecvQs. Bounded by the number of clients.
#[derive(Default)]
pub(super) struct Parking {
    parked: HashSet<ClientId>,
    held: HashMap<ClientId, Arc<RecvShared>>,
}

impl Parking {
    pub fn is_parked(&self, id: ClientId) -> bool {
        // The common case, nobody parked, costs one length check per turn.
        !self.parked.is_empty() && self.parked.contains(&id)
    }

    pub fn park(&mut self, id: ClientId) {
        self.parked.insert(id);
    }

    /// Unparks `id`; returns its RecvQ if it was held (it has events to serve).
    pub fn unpark(&mut self, id: ClientId) -> Option<Arc<RecvShared>> {
        self.parked.remove(&id);
        self.held.remove(&id)
    }

    /// Keeps a parked client's RecvQ aside until it is unparked.
    pub fn hold(&mut self, queue: Arc<RecvShared>) {
        self.held.insert(queue.id(), queue);
    }

    /// The client is gone: nothing of it stays here.
    pub fn forget(&mut self, id: ClientId) {
        self.parked.remove(&id);
        self.held.remove(&id);
    }

    pub fn clear(&mut self) {
        self.parked.clear();
        self.held.clear();
    }
}
