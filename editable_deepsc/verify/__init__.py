"""Receiver-verified edits: side information, the receiver's check, feedback and corrections."""
