//! Mode strings into changes, by the parameter rules of CHANMODES.

use super::MAX_PARAM_MODES;

/// How a channel mode letter takes its parameter (the CHANMODES types, plus prefixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Type A (`b`, `e`, `I`): a mask to add or remove; without one, a query of the list.
    List,
    /// Type B (`k`): a parameter to set; one is taken (if given) when unsetting too.
    Key,
    /// Type C (`l`): a parameter to set, none to unset.
    Limit,
    /// `o`, `v`: a nick, both ways.
    Prefix,
    /// Type D (`i`, `m`, `n`, `s`, `t`): no parameter.
    Flag,
}

/// The kind of channel mode `letter`, or `None` if we do not know it.
pub(super) fn kind(letter: char) -> Option<Kind> {
    Some(match letter {
        'b' | 'e' | 'I' => Kind::List,
        'k' => Kind::Key,
        'l' => Kind::Limit,
        'o' | 'v' => Kind::Prefix,
        'i' | 'm' | 'n' | 's' | 't' => Kind::Flag,
        _ => return None,
    })
}

/// One requested change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Change {
    pub adding: bool,
    pub letter: char,
    pub arg: Option<String>,
}

/// What one letter of a mode string asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Item {
    Change(Change),
    /// A list letter without a parameter: show the list.
    Query(char),
    /// A letter we do not know (472).
    Unknown(char),
    /// A letter that needs a parameter and got none (461).
    MissingArg(char),
}

/// Parses `modes` (e.g. `+ov-k`) with its `args`. At most [`MAX_PARAM_MODES`] changes that take
/// a parameter are kept; extra ones are dropped, as MODES in ISUPPORT announces.
pub(super) fn parse(modes: &str, args: &[String]) -> Vec<Item> {
    let mut args = args.iter();
    let mut adding = true;
    let mut with_param = 0;
    let mut items = Vec::new();
    for letter in modes.chars() {
        let Some(kind) = kind(letter) else {
            match letter {
                '+' => adding = true,
                '-' => adding = false,
                _ => items.push(Item::Unknown(letter)),
            }
            continue;
        };
        let takes_arg = match kind {
            Kind::List | Kind::Key | Kind::Prefix => true,
            Kind::Limit => adding,
            Kind::Flag => false,
        };
        let arg = if takes_arg {
            args.next().cloned()
        } else {
            None
        };
        let item = match (kind, arg) {
            (Kind::List, None) => Item::Query(letter),
            (Kind::Key, None) if !adding => Item::Change(Change {
                adding,
                letter,
                arg: None,
            }),
            (Kind::Key | Kind::Limit | Kind::Prefix, None) if takes_arg => Item::MissingArg(letter),
            (_, arg) => Item::Change(Change {
                adding,
                letter,
                arg,
            }),
        };
        if matches!(&item, Item::Change(c) if c.arg.is_some()) {
            with_param += 1;
            if with_param > MAX_PARAM_MODES {
                continue;
            }
        }
        items.push(item);
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn change(adding: bool, letter: char, arg: Option<&str>) -> Item {
        Item::Change(Change {
            adding,
            letter,
            arg: arg.map(str::to_string),
        })
    }

    #[test]
    fn parameters_follow_the_chanmodes_types() {
        let items = parse("+kl-l+o-v+m", &args(&["key", "10", "alice", "bob"]));
        assert_eq!(
            items,
            [
                change(true, 'k', Some("key")),
                change(true, 'l', Some("10")),
                change(false, 'l', None),
                change(true, 'o', Some("alice")),
                change(false, 'v', Some("bob")),
                change(true, 'm', None),
            ]
        );
    }

    #[test]
    fn lists_without_a_parameter_are_queries_and_unknown_letters_are_reported() {
        let items = parse("b+e-Ix", &[]);
        assert_eq!(
            items,
            [
                Item::Query('b'),
                Item::Query('e'),
                Item::Query('I'),
                Item::Unknown('x')
            ]
        );
    }

    #[test]
    fn missing_parameters_and_minus_k() {
        assert_eq!(parse("+k", &[]), [Item::MissingArg('k')]);
        assert_eq!(parse("+l", &[]), [Item::MissingArg('l')]);
        assert_eq!(parse("-o", &[]), [Item::MissingArg('o')]);
        assert_eq!(parse("-k", &[]), [change(false, 'k', None)]);
        assert_eq!(parse("-k", &args(&["x"])), [change(false, 'k', Some("x"))]);
    }

    #[test]
    fn at_most_max_param_modes_with_a_parameter() {
        let items = parse("+bbbbbb", &args(&["a", "b", "c", "d", "e", "f"]));
        assert_eq!(items.len(), MAX_PARAM_MODES);
    }
}
