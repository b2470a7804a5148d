extern int ign; int ign;
