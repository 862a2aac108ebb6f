//! The refund workflow in Cedar 4.11.
//!
//! Cedar is stateless: it knows nothing about the session. The caller keeps the session state and
//! hands it over with every request, so each [`CedarRefund::decide`] builds, from the
//! [`RefundRequest`]:
//!
//! - the principal entity `Shop::Session`, whose optional `verified_customer` attribute is the
//!   customer verified in the session (absent when none is);
//! - the resource entity `Shop::Order`, with the `owner` and `total_cents` the order lookup
//!   returned;
//! - the context `{ amount_cents, refunded_cents }`: the refund asked for and what the session has
//!   already refunded on this order;
//! - the `Entities` store of those two entities and the `Request`,
//!
//! and then runs the authorizer. That construction is part of every measured decision; parsing
//! and validating the policies against the schema happen once, in [`CedarRefund::new`]. Requests
//! and entities are not checked against the schema per decision (the policies were, and the
//! fixture builds well-typed values), which is Cedar's cheaper and common way to call it.
//!
//! Escalation is a second `permit` policy, annotated `@escalate`, whose condition is the allow
//! condition with `amount_cents > 50000` in place of `<= 50000`. The two cannot both hold, so an
//! `Allow` whose reason is the escalate policy is [`Verdict::Escalate`], any other `Allow` is
//! [`Verdict::Allow`], and `Deny` is [`Verdict::Block`].

use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId, PolicySet, Request,
    RestrictedExpression, Schema, ValidationMode, Validator,
};

use crate::{RefundRequest, Verdict};

/// The schema the policies are validated against.
pub const SCHEMA: &str = r#"
namespace Shop {
  entity Customer;
  entity Session = { verified_customer?: Customer };
  entity Order = { owner: Customer, total_cents: Long };

  action "process_refund" appliesTo {
    principal: [Session],
    resource: [Order],
    context: { amount_cents: Long, refunded_cents: Long }
  };
}
"#;

/// The policies: one `permit` per non-blocking outcome.
pub const POLICIES: &str = r#"
@id("refund-allow")
permit (
  principal is Shop::Session,
  action == Shop::Action::"process_refund",
  resource is Shop::Order
)
when {
  principal has verified_customer &&
  resource.owner == principal.verified_customer &&
  context.amount_cents <= resource.total_cents - context.refunded_cents &&
  context.amount_cents <= 50000
};

@id("refund-escalate")
@escalate("refunds above $500 need human approval")
permit (
  principal is Shop::Session,
  action == Shop::Action::"process_refund",
  resource is Shop::Order
)
when {
  principal has verified_customer &&
  resource.owner == principal.verified_customer &&
  context.amount_cents <= resource.total_cents - context.refunded_cents &&
  context.amount_cents > 50000
};
"#;

/// Id of the session entity: one session per decision, so any fixed id does.
const SESSION_ID: &str = "session";

/// Parsed and validated Cedar policies plus everything that does not change between decisions.
#[derive(Debug)]
pub struct CedarRefund {
    policies: PolicySet,
    escalate: PolicyId,
    authorizer: Authorizer,
    action: EntityUid,
    session_type: EntityTypeName,
    order_type: EntityTypeName,
    customer_type: EntityTypeName,
}

impl CedarRefund {
    /// Parse [`SCHEMA`] and [`POLICIES`] and validate the policies (strict mode).
    pub fn new() -> Result<Self, Box<dyn Error + Send + Sync>> {
        let (schema, _warnings) = Schema::from_cedarschema_str(SCHEMA)?;
        let policies = PolicySet::from_str(POLICIES)?;
        let validation = Validator::new(schema).validate(&policies, ValidationMode::Strict);
        if !validation.validation_passed() {
            let errors: Vec<String> = validation.validation_errors().map(ToString::to_string).collect();
            return Err(format!("the Cedar refund policies do not validate: {}", errors.join("; ")).into());
        }
        let escalate = policies
            .policies()
            .find(|p| p.annotation("escalate").is_some())
            .map(|p| p.id().clone())
            .ok_or("no policy is annotated @escalate")?;
        Ok(Self {
            policies,
            escalate,
            authorizer: Authorizer::new(),
            action: EntityUid::from_str(r#"Shop::Action::"process_refund""#)?,
            session_type: EntityTypeName::from_str("Shop::Session")?,
            order_type: EntityTypeName::from_str("Shop::Order")?,
            customer_type: EntityTypeName::from_str("Shop::Customer")?,
        })
    }

    fn customer(&self, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.customer_type.clone(), EntityId::new(id))
    }

    /// Build the `Request` and `Entities` for `req`: the per-decision cost of a stateless engine.
    pub fn build(&self, req: &RefundRequest) -> Result<(Request, Entities), Box<dyn Error + Send + Sync>> {
        let session = EntityUid::from_type_name_and_id(self.session_type.clone(), EntityId::new(SESSION_ID));
        let order = EntityUid::from_type_name_and_id(self.order_type.clone(), EntityId::new(&req.order_id));

        let mut session_attrs = HashMap::new();
        if let Some(customer) = &req.verified_customer {
            session_attrs
                .insert("verified_customer".to_owned(), RestrictedExpression::new_entity_uid(self.customer(customer)));
        }
        let order_attrs = HashMap::from([
            ("owner".to_owned(), RestrictedExpression::new_entity_uid(self.customer(&req.order_owner))),
            ("total_cents".to_owned(), RestrictedExpression::new_long(req.order_total_cents)),
        ]);
        let entities = Entities::from_entities(
            [
                Entity::new(session.clone(), session_attrs, HashSet::new())?,
                Entity::new(order.clone(), order_attrs, HashSet::new())?,
            ],
            None,
        )?;

        let context = Context::from_pairs([
            ("amount_cents".to_owned(), RestrictedExpression::new_long(req.amount_cents)),
            ("refunded_cents".to_owned(), RestrictedExpression::new_long(req.refunded_cents)),
        ])?;
        let request = Request::new(session, self.action.clone(), order, context, None)?;
        Ok((request, entities))
    }

    /// Run the authorizer on an already built request and map its response to a verdict.
    pub fn authorize(&self, request: &Request, entities: &Entities) -> Verdict {
        let response = self.authorizer.is_authorized(request, &self.policies, entities);
        match response.decision() {
            Decision::Deny => Verdict::Block,
            Decision::Allow if response.diagnostics().reason().any(|id| *id == self.escalate) => Verdict::Escalate,
            Decision::Allow => Verdict::Allow,
        }
    }

    /// Decide one refund: build the request and entities from `req`, then authorize.
    ///
    /// A request that cannot be built (it never happens with the fixture's own values) is blocked.
    pub fn decide(&self, req: &RefundRequest) -> Verdict {
        match self.build(req) {
            Ok((request, entities)) => self.authorize(&request, &entities),
            Err(_) => Verdict::Block,
        }
    }
}
