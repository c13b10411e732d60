"""The cart's rules, pure: values, `decide` and `evolve`, what an owner keeps per member, their codecs. Only the
standard library, `Decimal` and `UUID`; nothing here does I/O."""
