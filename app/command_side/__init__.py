"""The command side: handling one cart command, the journal it appends to, and the API's way to a cart's owner."""
