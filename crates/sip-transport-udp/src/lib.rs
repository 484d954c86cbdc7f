//! SIP over UDP: implementation pending (see the project's issues).
