//! Live events rendered once per distinct payload, not once per connection.
//!
//! A WebSocket operation runs through the executor once, when it is subscribed: validation,
//! limits, scopes, its rate charge and its field's checks (NOT_FOUND for an order the caller
//! cannot see) are all as for any operation. Its field then hands its feed (the caller's
//! events, scoped, resumed and caught up as `subscription` describes) over to the
//! connection ([`HandOver`]) instead of to the executor.
//!
//! Each event the feed yields is rendered by [`Renderer`]: the operation as the client sent
//! it (its text parsed once, and shared by the connections that sent the same text),
//! executed again with that one event ([`RenderOne`]), serialized, and remembered by what
//! decides the payload — the operation's text and name, the variables its selection reads
//! (not its field's arguments: `after` and the filters pick events, which the feed does),
//! the event, the caller's role (a vendor error's detail depends on it), its key's scopes
//! (fields an API key may not see are errors) and, to be safe, its tenant. Every other
//! dashboard asking the same for the same event sends the same bytes; 10,000 dashboards
//! following the operator's events cost one execution and one serialization per event,
//! plus a frame each.
//!
//! A subscription selects exactly one root field ([`Template::of`] refuses others, as
//! GraphQL does). A payload carrying errors is never shared: each connection renders its
//! own, so an INTERNAL error names its own request id.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use async_graphql::parser::types::{ExecutableDocument, Field, OperationType, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Request, Response, Variables};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sha2::{Digest, Sha256};

use super::subscription::{Item, LiveEvent};
use super::{AppSchema, RequestContext};
use crate::domain::events::DomainEvent;
use crate::domain::scopes::Scopes;
use crate::domain::{Actor, Domain, Tenant};
use entity::enums::Role;

/// A subscription's feed: the caller's events that its field keeps, or the one error that
/// ends it (EVENTS_LOST).
pub type Feed = BoxStream<'static, async_graphql::Result<Arc<DomainEvent>>>;

/// Request data asking a subscription field to hand its feed over instead of streaming it
/// to the executor.
#[derive(Clone, Default)]
pub struct HandOver(Arc<Mutex<Option<Feed>>>);

impl HandOver {
    /// Keeps `feed` for the connection; false when a feed was handed over already (an
    /// operation has one root field: [`Template::of`] refuses others).
    pub(super) fn give(&self, feed: Feed) -> bool {
        match self.0.lock() {
            Ok(mut slot) if slot.is_none() => {
                *slot = Some(feed);
                true
            }
            _ => false,
        }
    }

    /// The feed the field handed over, once the executor is done with the operation.
    pub fn take(&self) -> Option<Feed> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Request data asking a subscription field to yield this one item, and nothing else: no
/// checks, no feed (they ran when the operation was subscribed).
pub struct RenderOne(Mutex<Option<Item>>);

/// The one-item stream a rendering's field yields, if this request is a rendering.
pub(super) fn rendering(ctx: &async_graphql::Context<'_>) -> Option<BoxStream<'static, Item>> {
    let render = ctx.data_opt::<RenderOne>()?;
    // A rendering never follows events, even if its item were gone.
    let item = render.0.lock().ok().and_then(|mut item| item.take());
    Some(futures_util::stream::iter(item).boxed())
}

/// The event as `actor` reads it.
pub fn live_event(event: &DomainEvent, actor: &Actor) -> LiveEvent {
    let mut live = LiveEvent::from(event);
    live.detail = event.detail_for(actor.role());
    live
}

/// An operation as its client sent it, to be executed again for each event.
pub struct Template {
    /// Its text, parsed once; shared by every connection that sent the same text (a parsed
    /// document weighs tens of KiB).
    parsed: Arc<Parsed>,
    operation_name: Option<String>,
    variables: Variables,
    /// What of the operation decides a payload: its text and name, and the values of the
    /// variables its selection reads (not those only its field's arguments read: `after`,
    /// a filter — they decide which events come, which the connection's own feed does).
    digest: [u8; 32],
}

/// Why an operation has no template.
pub enum Unfit {
    /// Its text does not parse, or names no operation: the executor says why.
    Unparsed,
    /// It is a query or a mutation: the executor answers it once, and there are no events.
    NotSubscription,
    /// A subscription must select exactly one root field (GraphQL's "single root field").
    NotOneRootField,
}

impl Template {
    /// The template of `request` (taken before anything is added to it), its text parsed by
    /// (or already for) `renderer`.
    pub fn of(request: &Request, renderer: &Renderer) -> Result<Self, Unfit> {
        let parsed = renderer.parsed(&request.query)?;
        let document = &parsed.document;
        let Some(operation) = super::scopes::selected(document, request.operation_name.as_deref()) else {
            return Err(Unfit::Unparsed);
        };
        if operation.ty != OperationType::Subscription {
            return Err(Unfit::NotSubscription);
        }
        // One field, selected directly (async-graphql opens no stream for a field inside a
        // fragment at the root), and not `__typename`.
        let roots = root_fields(document, &operation.selection_set.node);
        let one = operation.selection_set.node.items.len() == 1
            && matches!(roots.as_slice(), [root] if !root.name.node.starts_with("__"));
        if !one || !matches!(operation.selection_set.node.items.first().map(|i| &i.node), Some(Selection::Field(_))) {
            return Err(Unfit::NotOneRootField);
        }
        let mut read = BTreeSet::new();
        variables_read(document, &operation.selection_set.node, &mut read);
        for directive in &operation.directives {
            arguments_read(&directive.node.arguments, &mut read);
        }
        let mut digest = Sha256::new();
        let mut part = |bytes: &[u8]| {
            digest.update((bytes.len() as u64).to_le_bytes());
            digest.update(bytes);
        };
        part(request.query.as_bytes());
        part(request.operation_name.as_deref().unwrap_or_default().as_bytes());
        for (name, value) in request.variables.iter().filter(|(name, _)| read.contains(name.as_str())) {
            part(name.as_bytes());
            part(serde_json::to_string(value).unwrap_or_default().as_bytes());
        }
        let digest = digest.finalize().into();
        Ok(Self {
            parsed,
            operation_name: request.operation_name.clone(),
            variables: request.variables.clone(),
            digest,
        })
    }

    fn request(&self, domain: &Arc<Domain>, actor: &Actor, item: Item) -> Request {
        let mut request = Request::new(self.parsed.query.clone()).variables(self.variables.clone());
        request.set_parsed_query(self.parsed.document.clone());
        if let Some(name) = &self.operation_name {
            request = request.operation_name(name.clone());
        }
        request
            .data(RequestContext::new(Arc::clone(domain), Some(actor.clone())))
            .data(RenderOne(Mutex::new(Some(item))))
    }
}

/// The root fields `root` selects, fragments followed (each once).
fn root_fields<'a>(document: &'a ExecutableDocument, root: &'a SelectionSet) -> Vec<&'a Field> {
    let mut fields = Vec::new();
    let mut pending = vec![root];
    let mut spread = HashSet::new();
    while let Some(set) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => fields.push(&field.node),
                Selection::InlineFragment(fragment) => pending.push(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread_of) => {
                    let name = &spread_of.node.fragment_name.node;
                    if spread.insert(name.as_str())
                        && let Some(fragment) = document.fragments.get(name)
                    {
                        pending.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
    fields
}

/// Adds to `read` the variables `root` (an operation's selection) reads, fragments followed
/// (each once): in every argument and directive, but for the arguments of the root field.
/// A loop, not a recursion: it runs before async-graphql limits the document's depth, and a
/// 64 KiB message of fragments nested in fragments must not overflow the stack.
fn variables_read(document: &ExecutableDocument, root: &SelectionSet, read: &mut BTreeSet<String>) {
    let mut pending = vec![(root, true)];
    let mut spread = HashSet::new();
    while let Some((set, at_root)) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    if !at_root {
                        arguments_read(&field.node.arguments, read);
                    }
                    for directive in &field.node.directives {
                        arguments_read(&directive.node.arguments, read);
                    }
                    pending.push((&field.node.selection_set.node, false));
                }
                Selection::InlineFragment(fragment) => {
                    for directive in &fragment.node.directives {
                        arguments_read(&directive.node.arguments, read);
                    }
                    pending.push((&fragment.node.selection_set.node, at_root));
                }
                Selection::FragmentSpread(spread_of) => {
                    for directive in &spread_of.node.directives {
                        arguments_read(&directive.node.arguments, read);
                    }
                    let name = &spread_of.node.fragment_name.node;
                    if spread.insert(name.as_str())
                        && let Some(fragment) = document.fragments.get(name)
                    {
                        for directive in &fragment.node.directives {
                            arguments_read(&directive.node.arguments, read);
                        }
                        pending.push((&fragment.node.selection_set.node, at_root));
                    }
                }
            }
        }
    }
}

/// Adds to `read` the variables `arguments` read.
fn arguments_read(
    arguments: &[(Positioned<Name>, Positioned<async_graphql_value::Value>)],
    read: &mut BTreeSet<String>,
) {
    for (_, value) in arguments {
        let _ = value.node.clone().into_const_with(|name| {
            read.insert(name.to_string());
            Ok::<_, std::convert::Infallible>(async_graphql::Value::Null)
        });
    }
}
/// What decides a payload. The tenant does not (an event a caller's feed passes reads the
/// same for every caller of its role and scopes), but is kept apart all the same: a payload
/// is only ever shared within a tenant.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    operation: [u8; 32],
    sequence: i64,
    role: Role,
    scopes: Option<Scopes>,
    tenant: Tenant,
}

/// A rendered payload: the response's JSON, shared; or `Private` when it carries errors
/// (each connection then renders its own).
#[derive(Clone)]
enum Rendered {
    Shared(Arc<str>),
    Private,
}

/// At most this many payloads, of at most this many bytes in all, are remembered; past
/// either, all are forgotten (dashboards move on together: what they need is the last few
/// events').
const REMEMBERED: usize = 4_096;
const REMEMBERED_BYTES: usize = 16 << 20;

/// An operation's text, parsed.
struct Parsed {
    query: String,
    document: ExecutableDocument,
}

/// At most this many parsed texts are looked up again; past it, those no connection holds
/// any more are forgotten.
const PARSED: usize = 1_024;

/// The payloads remembered, and their size.
#[derive(Default)]
struct Remembered {
    payloads: HashMap<Key, Arc<tokio::sync::OnceCell<Rendered>>>,
    bytes: usize,
}

/// Renders events' payloads, each once. One per process.
#[derive(Default)]
pub struct Renderer {
    remembered: Mutex<Remembered>,
    /// Texts parsed, by their digest, while a connection holds them.
    parsed: Mutex<HashMap<[u8; 32], Weak<Parsed>>>,
    rendered: AtomicU64,
}

/// What a connection sends for one event.
pub enum Payload {
    /// The payload's JSON, the same for every connection asking the same.
    Shared(Arc<str>),
    /// This connection's own response (it carries errors); boxed, as it is rare.
    Own(Box<Response>),
}

impl Renderer {
    /// `query` parsed: as another connection's, when one holds the same text.
    fn parsed(&self, query: &str) -> Result<Arc<Parsed>, Unfit> {
        let digest: [u8; 32] = Sha256::digest(query.as_bytes()).into();
        let held = self.parsed.lock().ok().and_then(|parsed| parsed.get(&digest).and_then(Weak::upgrade));
        if let Some(held) = held.filter(|held| held.query == query) {
            return Ok(held);
        }
        let document = async_graphql::parser::parse_query(query).map_err(|_| Unfit::Unparsed)?;
        let parsed = Arc::new(Parsed { query: query.to_owned(), document });
        if let Ok(mut all) = self.parsed.lock() {
            if all.len() >= PARSED {
                all.retain(|_, held| held.strong_count() > 0);
            }
            if all.len() < PARSED {
                all.insert(digest, Arc::downgrade(&parsed));
            }
        }
        Ok(parsed)
    }

    /// How many payloads this process has rendered.
    pub fn rendered(&self) -> u64 {
        self.rendered.load(Ordering::Relaxed)
    }

    /// The payload of `event` for `actor`'s operation `template`.
    pub async fn payload(
        &self,
        schema: &AppSchema,
        domain: &Arc<Domain>,
        template: &Template,
        actor: &Actor,
        event: &DomainEvent,
    ) -> Payload {
        let key = Key {
            operation: template.digest,
            sequence: event.sequence,
            role: actor.role(),
            scopes: actor.scopes,
            tenant: actor.tenant,
        };
        let cell = match self.remembered.lock() {
            Ok(mut remembered) => {
                let full = remembered.payloads.len() >= REMEMBERED || remembered.bytes >= REMEMBERED_BYTES;
                if full && !remembered.payloads.contains_key(&key) {
                    *remembered = Remembered::default();
                }
                Arc::clone(remembered.payloads.entry(key).or_default())
            }
            Err(_) => Arc::default(),
        };
        // Every connection but the first finds it rendered, and waits for nothing.
        let rendered = match cell.get() {
            Some(rendered) => rendered.clone(),
            // Boxed: a connection's task holds the space of its largest wait while it waits
            // for its next event, and a rendering is far larger than that wait.
            None => Box::pin(cell.get_or_init(|| self.share(schema, domain, template, actor, event))).await.clone(),
        };
        match rendered {
            Rendered::Shared(json) => Payload::Shared(json),
            Rendered::Private => Payload::Own(Box::new(
                Box::pin(self.render(schema, domain, template, actor, Ok(live_event(event, actor)))).await,
            )),
        }
    }

    /// Renders `event` to be shared: `Private` when it carries errors.
    async fn share(
        &self,
        schema: &AppSchema,
        domain: &Arc<Domain>,
        template: &Template,
        actor: &Actor,
        event: &DomainEvent,
    ) -> Rendered {
        let response = self.render(schema, domain, template, actor, Ok(live_event(event, actor))).await;
        if !response.errors.is_empty() {
            return Rendered::Private;
        }
        match serde_json::to_string(&response) {
            Ok(json) => {
                if let Ok(mut remembered) = self.remembered.lock() {
                    remembered.bytes = remembered.bytes.saturating_add(json.len());
                }
                Rendered::Shared(json.into())
            }
            Err(_) => Rendered::Private,
        }
    }

    /// The response of `template` yielding `item` (an event, or the error ending a feed).
    pub async fn render(
        &self,
        schema: &AppSchema,
        domain: &Arc<Domain>,
        template: &Template,
        actor: &Actor,
        item: Item,
    ) -> Response {
        self.rendered.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("websocket_payloads_rendered_total").increment(1);
        let mut responses = schema.execute_stream(template.request(domain, actor, item));
        let mut response = responses.next().await.unwrap_or_else(|| {
            let error = async_graphql::ServerError::new("internal error", None);
            let mut response = Response::from_errors(vec![error]);
            if let Some(error) = response.errors.first_mut() {
                error.extensions.get_or_insert_with(Default::default).set("code", "INTERNAL");
            }
            response
        });
        super::errors::finalize(&mut response);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(query: &str, variables: serde_json::Value) -> [u8; 32] {
        let request = Request::new(query).variables(Variables::from_json(variables));
        Template::of(&request, &Renderer::default()).map(|t| t.digest).unwrap_or_default()
    }

    #[test]
    fn what_only_picks_the_events_does_not_part_payloads_and_what_shapes_them_does() {
        let feed = "subscription($after: String, $kinds: [LiveEventKind!], $detail: Boolean!) {
            liveEvents(after: $after, kinds: $kinds) { kind ...More detail @include(if: $detail) } }
            fragment More on LiveEvent { status @skip(if: $detail) }";
        let base = digest(feed, serde_json::json!({"after": "1", "kinds": ["ORDER_PLACED"], "detail": true}));
        assert_ne!(base, [0; 32]);
        // The root field's arguments, and variables nothing reads, decide only which events come.
        assert_eq!(base, digest(feed, serde_json::json!({"after": "9", "detail": true})));
        assert_eq!(base, digest(feed, serde_json::json!({"after": "1", "detail": true, "nonce": 4})));
        // A variable the selection reads (here, through a fragment too) shapes the payload.
        assert_ne!(base, digest(feed, serde_json::json!({"after": "1", "detail": false})));
        // So do the text and the operation chosen.
        assert_ne!(
            base,
            digest(&feed.replace("kind ...More", "kind cursor ...More"), serde_json::json!({"detail": true}))
        );
    }

    #[test]
    fn a_parsed_text_is_shared_while_a_connection_holds_it() {
        let renderer = Renderer::default();
        let query = "subscription { liveEvents { kind } }";
        let first = Template::of(&Request::new(query), &renderer).map(|t| t.parsed).ok();
        let second = Template::of(&Request::new(query), &renderer).map(|t| t.parsed).ok();
        assert!(first.zip(second).is_some_and(|(a, b)| Arc::ptr_eq(&a, &b)));
        assert!(matches!(Template::of(&Request::new("subscription {"), &renderer), Err(Unfit::Unparsed)));
    }
}
