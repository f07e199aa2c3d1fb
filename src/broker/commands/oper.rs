//! OPER: become an IRC operator. The password check is slow on purpose (Argon2), so it runs on
//! the blocking pool; the broker answers when [`oper_checked`] hears the result.

use crate::broker::{build_line, Broker, ClientId, Event};
use crate::proto::{numeric, Message};

/// At most this many OPER checks run at once, node-wide: each may hold tens of MiB.
const MAX_OPER_CHECKS: usize = 2;

pub(super) fn oper(b: &mut Broker, id: ClientId, msg: &Message) {
    let (name, password) = (msg.params[0].clone(), msg.params[1].clone());
    let Some(operator) = b.config.operators.iter().find(|o| o.name == name) else {
        log::warn!("OPER {name} from {}: no such operator", b.nick_of(id));
        b.reply(id, numeric::ERR_NOOPERHOST, &[]);
        return;
    };
    let hash = operator.password_hash.clone();
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    if client.oper_pending || b.oper_checks >= MAX_OPER_CHECKS {
        b.reply(id, numeric::RPL_TRYAGAIN, &["OPER"]);
        return;
    }
    client.oper_pending = true;
    b.oper_checks += 1;
    let job = move || Event::OperChecked {
        id,
        ok: crate::auth::verify_password(&hash, &password),
        name,
    };
    match b.config.hooks.offload.clone() {
        Some(offload) => {
            // The client's later commands wait for the answer, so its replies keep their order
            // (a PING sent after OPER is answered after 381/464); everyone else goes on.
            b.park(id);
            offload(Box::new(job));
        }
        None => {
            // No blocking pool (a broker driven by hand, in unit tests): check inline.
            if let Event::OperChecked { id, name, ok } = job() {
                oper_checked(b, id, &name, ok);
            }
        }
    }
}

/// The answer to an OPER check.
pub(in crate::broker) fn oper_checked(b: &mut Broker, id: ClientId, name: &str, ok: bool) {
    b.oper_checks = b.oper_checks.saturating_sub(1);
    b.unpark(id);
    let Some(client) = b.clients.get_mut(&id) else {
        return;
    };
    client.oper_pending = false;
    if !ok {
        log::warn!("OPER {name} from {}: wrong password", client.mask);
        b.reply(id, numeric::ERR_PASSWDMISMATCH, &[]);
        return;
    }
    client.oper = true;
    log::info!("{} is now an IRC operator ({name})", client.mask);
    let line = build_line(
        Some(&client.mask.clone()),
        "MODE",
        &[client.nick()],
        Some("+o"),
    );
    b.reply(id, numeric::RPL_YOUREOPER, &[]);
    b.send(id, line);
    if b.linked() {
        b.publish_user_modes(id);
    }
}

#[cfg(test)]
mod tests {
    use crate::broker::harness::Harness;
    use crate::broker::{BrokerConfig, Operator};

    #[test]
    fn at_most_two_checks_run_at_once() {
        let hash = crate::auth::hash_password("pw", b"0123456789abcdef").unwrap();
        let mut h = Harness::new(BrokerConfig {
            operators: vec![Operator {
                name: "admin".into(),
                password_hash: hash,
            }],
            ..BrokerConfig::default()
        });
        let ids: Vec<_> = ["a", "b", "c"].iter().map(|n| h.register(n)).collect();
        for &id in &ids {
            h.send(id, "OPER admin pw");
        }
        assert_eq!(h.offloaded(), 2, "the third check does not start");
        assert_eq!(
            h.take(ids[2]),
            [":chatnode.local 263 c OPER :Please wait a while and try again."]
        );
        h.run_offloaded();
        h.send(ids[2], "OPER admin pw");
        assert_eq!(h.offloaded(), 1, "a slot is free again");
    }
}
