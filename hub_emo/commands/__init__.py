"""One module per `hub-emo` subcommand: parse, call one library function, print."""
