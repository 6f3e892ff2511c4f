//! One request/response exchange on a `$cbs` or `$management` node: a sender to the node and
//! a receiver whose target is the reply-to address, both detached afterwards.

use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::messaging::{ApplicationProperties, Message, MessageId, Properties};
use fe2o3_amqp::types::primitives::{SimpleValue, Value};
use fe2o3_amqp::{Receiver, Sender};

use crate::amqp::errors::{Failure, amqp_error, classify, status_error};
use crate::error::{Error, Result};

/// A `$cbs`/`$management` answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Response {
    /// `status-code`.
    pub status: i32,
    /// `status-description`, or empty.
    pub description: String,
    /// `error-condition`, when the node sent one.
    pub condition: Option<String>,
    /// The amqp-value body.
    pub body: Value,
}

impl Response {
    /// `Ok(self)` for a 2xx status, else the classified error. `context` names the operation.
    pub fn success(self, context: &str) -> Result<Self> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(status_error(
                context,
                self.status,
                self.condition.as_deref(),
                &self.description,
            ))
        }
    }
}

/// Sends `body` with application `properties` to `node` and waits for the answer. The body
/// may be a secret (a token): it never appears in errors or logs. The caller bounds it with
/// the client's step timeout.
pub(crate) async fn request(
    session: &mut SessionHandle<()>,
    node: &str,
    properties: &[(&str, &str)],
    body: Value,
) -> Result<Response> {
    let id = uuid::Uuid::new_v4().to_string();
    let reply_to = format!("{node}-client-reply-{id}");
    let exchange = async {
        let mut sender = Sender::attach(session, format!("{node}-sender-{id}"), node)
            .await
            .map_err(|e| amqp_error(&format!("attach to {node}"), e))?;
        let mut receiver = Receiver::builder()
            .name(format!("{node}-receiver-{id}"))
            .source(node)
            .target(reply_to.as_str())
            .attach(session)
            .await
            .map_err(|e| amqp_error(&format!("attach reply link to {node}"), e))?;
        let mut app = ApplicationProperties::builder();
        for (key, value) in properties {
            app = app.insert(*key, *value);
        }
        let message = Message::builder()
            .properties(
                Properties::builder()
                    .message_id(MessageId::String(id.clone()))
                    .reply_to(reply_to.clone())
                    .build(),
            )
            .application_properties(app.build())
            .value(body)
            .build();
        sender
            .send(message)
            .await
            .map_err(|e| amqp_error(&format!("request to {node}"), e))?;
        let delivery = receiver
            .recv::<Value>()
            .await
            .map_err(|e| amqp_error(&format!("response from {node}"), e))?;
        receiver
            .accept(&delivery)
            .await
            .map_err(|e| amqp_error(&format!("settle response from {node}"), e))?;
        let response = parse(delivery.message())?;
        // Best effort: the answer is in hand whatever the detaches do.
        let _ = sender.close().await;
        let _ = receiver.close().await;
        Ok(response)
    };
    exchange.await
}

fn parse(message: &Message<Value>) -> Result<Response> {
    let app = message.application_properties.as_ref();
    let get = |keys: &[&str]| app.and_then(|a| keys.iter().find_map(|k| a.0.get(*k))).cloned();
    let status = match get(&["status-code", "statusCode"]) {
        Some(SimpleValue::Int(v)) => v,
        Some(SimpleValue::Long(v)) => i32::try_from(v).unwrap_or(i32::MAX),
        Some(SimpleValue::Uint(v)) => i32::try_from(v).unwrap_or(i32::MAX),
        Some(SimpleValue::Short(v)) => i32::from(v),
        Some(SimpleValue::Ushort(v)) => i32::from(v),
        _ => {
            return Err(Error::new(
                classify(&Failure::Protocol),
                "response without a status-code",
            ));
        }
    };
    let text = |value: Option<SimpleValue>| match value {
        Some(SimpleValue::String(s)) => Some(s),
        Some(SimpleValue::Symbol(s)) => Some(s.0),
        _ => None,
    };
    Ok(Response {
        status,
        description: text(get(&["status-description", "statusDescription"])).unwrap_or_default(),
        condition: text(get(&["error-condition", "errorCondition"])),
        body: message.body.clone(),
    })
}
