"""The federation coordinator on the hub server: federations, client tokens, rounds and updates in the
server's database (so a restart mid-round loses nothing), and the HTTP routes clients talk to."""
