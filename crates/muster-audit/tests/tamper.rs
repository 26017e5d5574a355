//! Property: any single edit, deletion or swap in a chain is found, at the
//! entry concerned.

use muster_audit::{Link, Problem, Verifier, GENESIS};
use proptest::prelude::*;

fn chain(details: &[String]) -> Vec<Link> {
    let mut previous = GENESIS.to_owned();
    details
        .iter()
        .enumerate()
        .map(|(index, detail)| {
            let position = index as u64 + 1;
            let link = Link::seal(
                &previous,
                position,
                format!("{{\"op\":\"update\",\"n\":{position}}}"),
                detail.clone(),
            );
            previous = link.chain_hash.clone();
            link
        })
        .collect()
}

/// The first bad position, `None` when the chain verifies against `head`.
fn first_bad(links: &[Link], head: (u64, &str)) -> Option<u64> {
    let mut verifier = Verifier::new();
    for link in links {
        if let Err(broken) = verifier.check(link) {
            return Some(broken.position);
        }
    }
    verifier
        .finish(Some(head))
        .err()
        .map(|broken| broken.position)
}

#[derive(Debug, Clone)]
enum Tamper {
    EditSkeleton(usize),
    EditDetail(usize),
    EditDetailAndHash(usize),
    Delete(usize),
    Swap(usize, usize),
    SwapContents(usize, usize),
}

fn tamper(count: usize) -> impl Strategy<Value = Tamper> {
    let index = 0..count;
    prop_oneof![
        index.clone().prop_map(Tamper::EditSkeleton),
        index.clone().prop_map(Tamper::EditDetail),
        index.clone().prop_map(Tamper::EditDetailAndHash),
        index.clone().prop_map(Tamper::Delete),
        (index.clone(), index.clone()).prop_map(|(a, b)| Tamper::Swap(a, b)),
        (index.clone(), index).prop_map(|(a, b)| Tamper::SwapContents(a, b)),
    ]
}

proptest! {
    #[test]
    fn any_single_tamper_is_found(
        (details, tampering) in proptest::collection::vec("[a-z]{0,8}", 1..12)
            .prop_flat_map(|details| {
                let count = details.len();
                (Just(details), tamper(count))
            })
    ) {
        let mut links = chain(&details);
        let head_link = links.last().cloned();
        prop_assume!(head_link.is_some());
        let head_link = head_link.unwrap_or_else(|| Link::seal(GENESIS, 1, String::new(), String::new()));
        let head = (head_link.position, head_link.chain_hash.as_str());
        prop_assert_eq!(first_bad(&links, head), None);
        let expected = match tampering {
            Tamper::EditSkeleton(at) => {
                links[at].skeleton.push(' ');
                Some(at as u64 + 1)
            }
            Tamper::EditDetail(at) => {
                links[at].detail = Some(format!("{}!", links[at].detail.clone().unwrap_or_default()));
                Some(at as u64 + 1)
            }
            Tamper::EditDetailAndHash(at) => {
                let detail = format!("{}!", links[at].detail.clone().unwrap_or_default());
                links[at].detail_hash = muster_audit::digest(&detail);
                links[at].detail = Some(detail);
                Some(at as u64 + 1)
            }
            Tamper::Delete(at) => {
                links.remove(at);
                // The last entry deleted: found against the head.
                Some(if at == details.len() - 1 { at as u64 } else { at as u64 + 1 })
            }
            Tamper::Swap(a, b) => {
                prop_assume!(a != b && links[a] != links[b]);
                links.swap(a, b);
                Some(a.min(b) as u64 + 1)
            }
            Tamper::SwapContents(a, b) => {
                prop_assume!(a != b);
                let (skeleton_a, detail_a, hash_a) = (links[a].skeleton.clone(), links[a].detail.clone(), links[a].detail_hash.clone());
                links[a].skeleton = links[b].skeleton.clone();
                links[a].detail = links[b].detail.clone();
                links[a].detail_hash = links[b].detail_hash.clone();
                links[b].skeleton = skeleton_a;
                links[b].detail = detail_a;
                links[b].detail_hash = hash_a;
                Some(a.min(b) as u64 + 1)
            }
        };
        prop_assert_eq!(first_bad(&links, head), expected);
    }

    #[test]
    fn redacting_details_keeps_the_chain(
        details in proptest::collection::vec("[a-z]{0,8}", 1..12),
        redact in proptest::collection::vec(any::<bool>(), 12),
    ) {
        let mut links = chain(&details);
        let head = links.last().map(|link| (link.position, link.chain_hash.clone()));
        for (link, redact) in links.iter_mut().zip(redact) {
            if redact {
                link.detail = None;
            }
        }
        let head = head.as_ref().map(|(position, hash)| (*position, hash.as_str()));
        prop_assert_eq!(head.and_then(|head| first_bad(&links, head)), None);
        let _ = Problem::ChainBroken;
    }
}
