//! What lies over the screen: forms, dialogs, the `:` line, help, the
//! questions asked before something is done. They are one stack; the one
//! on top takes the keys (`App::on_overlay_key` is the one routing
//! function) and they are drawn bottom to top.

use super::app::Confirm;
use super::record_form::RecordForm;
use super::request_form::RequestForm;
use super::revisions::Revisions;
use crate::domain::{ExecutionRequest, Id};
use tui_textarea::TextArea;

/// One overlay and its state.
pub enum Overlay {
    /// The keys of the current screen (`?`).
    Help(()),
    /// Lines to read (a policy explanation): a title and the text.
    Text((String, Vec<String>)),
    /// The request form of a task.
    RequestForm(Box<RequestForm>),
    /// An Admin form.
    RecordForm(Box<RecordForm>),
    /// The History detail of an operation and, once loaded, its request.
    Detail((Id, Option<ExecutionRequest>)),
    /// A template's revisions.
    Revisions(Revisions),
    /// The `:` command line.
    Command(TextArea<'static>),
    /// A TOTP code for an approval the policy says needs one: the request,
    /// the comment already given, the code being typed.
    Totp((Vec<Id>, String, TextArea<'static>)),
    /// Where to export the audit log, asked before anything is written.
    Export(TextArea<'static>),
    /// A decision being typed: the request, approve (or reject), the comment.
    Decision((Vec<Id>, bool, TextArea<'static>)),
    /// An action waiting for `y`.
    Confirm(Confirm),
    /// The `/` filter being typed.
    Filter(TextArea<'static>),
    /// Why a credential's password is to be shown: its name, the
    /// justification being typed.
    Justification((String, TextArea<'static>)),
    /// A one-line question and its answer being typed.
    Ask((Ask, TextArea<'static>)),
}

/// What a one-line question is for.
#[derive(Clone, Debug, PartialEq)]
pub enum Ask {
    /// Why a session is opened on this device.
    Connect(String),
    /// The second factor a session's policy asks for, the why kept.
    ConnectCode {
        device: String,
        justification: String,
    },
    /// Why this session is ended (its user is shown it).
    EndSession(Id),
    /// When the window of these requests should end, before approving them.
    Narrow(Vec<Id>),
    /// Where to save an operation's output.
    SaveOutput(Id),
}

impl Ask {
    pub fn label(&self) -> String {
        match self {
            Ask::Connect(device) => format!("open a session on {device}; why (justification): "),
            Ask::ConnectCode { device, .. } => {
                format!("open a session on {device}; current TOTP code: ")
            }
            Ask::EndSession(id) => format!("end session {id}; why (its user sees it): "),
            Ask::Narrow(ids) => format!(
                "approve {} with its window ending at (+2h, or 2026-12-01T18:00:00Z): ",
                super::screens::requests_text(ids)
            ),
            Ask::SaveOutput(id) => {
                format!("save the output of operation {id} to (a new file, yours alone): ")
            }
        }
    }

    /// What the status line says when Esc drops the question.
    pub fn dropped(&self) -> String {
        match self {
            Ask::Connect(device) | Ask::ConnectCode { device, .. } => {
                format!("no session opened on {device}")
            }
            Ask::EndSession(id) => format!("session {id} goes on"),
            Ask::Narrow(ids) => format!("{}: nothing decided", super::screens::requests_text(ids)),
            Ask::SaveOutput(id) => format!("the output of operation {id} was not saved"),
        }
    }

    /// The call an answer makes, or why the answer is not enough.
    pub fn answered(&self, text: String) -> Result<super::Call, String> {
        match self {
            Ask::Connect(device) => Ok(super::Call::Connect {
                device: device.clone(),
                justification: text,
                totp: None,
            }),
            Ask::ConnectCode { .. } if text.trim().is_empty() => {
                Err("type the code your authenticator shows".into())
            }
            Ask::ConnectCode {
                device,
                justification,
            } => Ok(super::Call::Connect {
                device: device.clone(),
                justification: justification.clone(),
                totp: Some(text.trim().to_string()),
            }),
            // Answered by the App itself (it opens the approval's comment).
            Ask::Narrow(_) => Err("type when the window should end".into()),
            Ask::EndSession(_) if text.trim().is_empty() => {
                Err("say why: its user is shown the reason".into())
            }
            Ask::EndSession(id) => Ok(super::Call::EndSession {
                id: *id,
                reason: text,
            }),
            Ask::SaveOutput(_) if text.trim().is_empty() => Err("name the file to save to".into()),
            Ask::SaveOutput(id) => Ok(super::Call::SaveOutput {
                id: *id,
                path: std::path::PathBuf::from(text.trim()),
            }),
        }
    }
}

/// Typed access to the overlays on the stack, wherever they are: a getter,
/// a mutable getter and one that takes it off the stack.
macro_rules! access {
    ($($variant:ident($ty:ty): $get:ident, $get_mut:ident, $take:ident;)*) => {
        impl super::App {
            $(
                pub fn $get(&self) -> Option<&$ty> {
                    self.overlays.iter().rev().find_map(|o| match o {
                        Overlay::$variant(v) => Some(v),
                        _ => None,
                    })
                }
                pub fn $get_mut(&mut self) -> Option<&mut $ty> {
                    self.overlays.iter_mut().rev().find_map(|o| match o {
                        Overlay::$variant(v) => Some(v),
                        _ => None,
                    })
                }
                pub fn $take(&mut self) -> Option<$ty> {
                    let at = self
                        .overlays
                        .iter()
                        .rposition(|o| matches!(o, Overlay::$variant(_)))?;
                    match self.overlays.remove(at) {
                        Overlay::$variant(v) => Some(v),
                        _ => None,
                    }
                }
            )*
        }
    };
}

access! {
    Help(()): help, help_mut, take_help;
    Text((String, Vec<String>)): text_view, text_view_mut, take_text_view;
    RequestForm(Box<RequestForm>): request_form, request_form_mut, take_request_form;
    RecordForm(Box<RecordForm>): record_form, record_form_mut, take_record_form;
    Detail((Id, Option<ExecutionRequest>)): detail, detail_mut, take_detail;
    Revisions(Revisions): revisions, revisions_mut, take_revisions;
    Command(TextArea<'static>): command_input, command_input_mut, take_command_input;
    Totp((Vec<Id>, String, TextArea<'static>)): totp_input, totp_input_mut, take_totp_input;
    Export(TextArea<'static>): export_input, export_input_mut, take_export_input;
    Decision((Vec<Id>, bool, TextArea<'static>)): decision_input, decision_input_mut, take_decision_input;
    Confirm(Confirm): confirm, confirm_mut, take_confirm;
    Filter(TextArea<'static>): filter_input, filter_input_mut, take_filter_input;
    Justification((String, TextArea<'static>)): justification_input, justification_input_mut, take_justification_input;
    Ask((Ask, TextArea<'static>)): ask, ask_mut, take_ask;
}
