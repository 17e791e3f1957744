// The merge service's words, in English and Dutch, chosen by Accept-Language.
'use strict';

const MESSAGES = {
  en: {
    accountsTitle: 'Accounts your products never confirmed this address for',
    accountsIntro: 'Anyone could have typed this address there, so only that account\'s own password brings it in. Leave it if it is not yours.',
    accountPassword: 'Password of your {product} account',
    proveAccount: 'Bring this account in',
    accountProven: 'Your {product} account comes along.',
    accountWrong: 'That is not the password of the {product} account.',
    accountTries: 'Too many tries for this account. Sign in again later to try again.',
    accountUnavailable: 'That product cannot be reached right now. Try again in a moment.',
    title: 'Bring your accounts together',
    intro: 'You have accounts with the same email address in {products}. To join them into one sign-in, we first check that the mailbox is yours.',
    address: 'We will send a link to {email}.',
    send: 'Send me a link',
    skip: 'Skip for now',
    skipNote: 'You can do this next time you sign in.',
    sentTitle: 'Check your inbox',
    sent: 'We sent a link to {email}. It works once, for 30 minutes, in this browser.',
    resend: 'Send another link',
    passwordTitle: 'Choose a new password',
    passwordIntro: 'Your mailbox is confirmed. Choose one password for all your accounts.',
    newPassword: 'New password',
    repeatPassword: 'Repeat the new password',
    setPassword: 'Set password',
    signinTitle: 'Sign in with your new password',
    signinIntro: 'One last step: sign in once with the password you just chose.',
    password: 'Password',
    signin: 'Sign in',
    finishing: 'Taking you back…',
    continue: 'Continue',
    badSession: 'This page has expired. Sign in to the application again to continue.',
    badToken: 'This link is not valid. Sign in to the application again to continue.',
    linkUsed: 'This link was already used or has expired.',
    linkOtherBrowser: 'Open the link in the browser where you asked for it.',
    linkSuperseded: 'A newer link was sent since: use the link in the latest mail.',
    tokenOtherBrowser: 'This sign-in was already opened in another browser.',
    askAgain: 'Ask for a new link',
    signInAgain: 'Sign in to the application again and you will be brought back here.',
    tooMany: 'Too many mails were sent. Wait a few minutes and try again.',
    mailRefused: 'We cannot send mail to the address of this account. You can skip for now.',
    mailFailed: 'The mail could not be sent. Try again later, or skip for now.',
    csrf: 'Your form has expired. Please try again.',
    badRequest: 'This request could not be read. Go back and try again.',
    notFound: 'There is no such page.',
    policyShort: 'Choose at least {min} characters.',
    policyLong: 'Choose at most {max} characters.',
    policyEmail: 'Do not use your email address in the password.',
    policyCommon: 'This password is too common.',
    policyMismatch: 'The two passwords are not the same.',
    wrongPassword: 'That is not the password you just chose.',
    tenantDown: 'We could not reach the sign-in service. Please try again in a moment.',
    mailSubject: 'Confirm your email to join your accounts',
    mailBody: 'Hello,\n\nyou asked to join your accounts ({products}) into one sign-in.\nOpen this link in the same browser to confirm that this mailbox is yours (it works once, for 30 minutes):\n\n{link}\n\nIf you did not ask for this, ignore this mail: nothing changes.'
  },
  nl: {
    accountsTitle: 'Accounts waarvoor uw producten dit adres nooit bevestigden',
    accountsIntro: 'Iedereen kan dit adres daar hebben ingevuld, dus alleen het eigen wachtwoord van dat account brengt het mee. Laat het staan als het niet van u is.',
    accountPassword: 'Wachtwoord van uw {product}-account',
    proveAccount: 'Dit account meenemen',
    accountProven: 'Uw {product}-account gaat mee.',
    accountWrong: 'Dat is niet het wachtwoord van het {product}-account.',
    accountTries: 'Te vaak geprobeerd voor dit account. Meld u later opnieuw aan om het nog eens te proberen.',
    accountUnavailable: 'Dat product is nu niet bereikbaar. Probeer het zo nog eens.',
    title: 'Breng je accounts samen',
    intro: 'Je hebt accounts met hetzelfde e-mailadres bij {products}. Om ze samen te voegen tot één login controleren we eerst of de mailbox van jou is.',
    address: 'We sturen een link naar {email}.',
    send: 'Stuur me een link',
    skip: 'Nu overslaan',
    skipNote: 'Je kunt dit de volgende keer dat je inlogt doen.',
    sentTitle: 'Kijk in je inbox',
    sent: 'We hebben een link gestuurd naar {email}. Hij werkt één keer, 30 minuten lang, in deze browser.',
    resend: 'Stuur nog een link',
    passwordTitle: 'Kies een nieuw wachtwoord',
    passwordIntro: 'Je mailbox is bevestigd. Kies één wachtwoord voor al je accounts.',
    newPassword: 'Nieuw wachtwoord',
    repeatPassword: 'Herhaal het nieuwe wachtwoord',
    setPassword: 'Wachtwoord instellen',
    signinTitle: 'Log in met je nieuwe wachtwoord',
    signinIntro: 'Nog één stap: log één keer in met het wachtwoord dat je net koos.',
    password: 'Wachtwoord',
    signin: 'Inloggen',
    finishing: 'We brengen je terug…',
    continue: 'Doorgaan',
    badSession: 'Deze pagina is verlopen. Log opnieuw in bij de applicatie om verder te gaan.',
    badToken: 'Deze link is niet geldig. Log opnieuw in bij de applicatie om verder te gaan.',
    linkUsed: 'Deze link is al gebruikt of verlopen.',
    linkOtherBrowser: 'Open de link in de browser waarin je hem hebt aangevraagd.',
    linkSuperseded: 'Er is intussen een nieuwere link gestuurd: gebruik de link in de laatste mail.',
    tokenOtherBrowser: 'Deze login is al in een andere browser geopend.',
    askAgain: 'Vraag een nieuwe link aan',
    signInAgain: 'Log opnieuw in bij de applicatie, dan kom je hier terug.',
    tooMany: 'Er zijn te veel mails verstuurd. Wacht een paar minuten en probeer het opnieuw.',
    mailRefused: 'We kunnen geen mail sturen naar het adres van dit account. Je kunt dit nu overslaan.',
    mailFailed: 'De mail kon niet worden verstuurd. Probeer het later opnieuw, of sla dit nu over.',
    csrf: 'Je formulier is verlopen. Probeer het opnieuw.',
    badRequest: 'Dit verzoek kon niet worden gelezen. Ga terug en probeer het opnieuw.',
    notFound: 'Deze pagina bestaat niet.',
    policyShort: 'Kies minstens {min} tekens.',
    policyLong: 'Kies hoogstens {max} tekens.',
    policyEmail: 'Gebruik je e-mailadres niet in het wachtwoord.',
    policyCommon: 'Dit wachtwoord komt te vaak voor.',
    policyMismatch: 'De twee wachtwoorden zijn niet gelijk.',
    wrongPassword: 'Dat is niet het wachtwoord dat je net koos.',
    tenantDown: 'We konden de inlogdienst niet bereiken. Probeer het zo opnieuw.',
    mailSubject: 'Bevestig je e-mailadres om je accounts samen te voegen',
    mailBody: 'Hallo,\n\nje hebt gevraagd om je accounts ({products}) samen te voegen tot één login.\nOpen deze link in dezelfde browser om te bevestigen dat deze mailbox van jou is (hij werkt één keer, 30 minuten lang):\n\n{link}\n\nHeb je dit niet gevraagd? Negeer deze mail dan: er verandert niets.'
  }
};

/** The language for an Accept-Language header: Dutch when preferred, English otherwise. */
function language(header) {
  const prefs = String(header || '').split(',').map((part) => {
    const [tag, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return { tag, q: q ? Number(q.slice(2)) || 0 : 1 };
  }).filter((p) => p.tag).sort((a, b) => b.q - a.q);
  for (const p of prefs) {
    const base = p.tag.split('-')[0];
    if (MESSAGES[base]) return base;
  }
  return 'en';
}

/** A message with `{name}` placeholders filled in (the values are inserted as given). */
function t(lang, key, vars = {}) {
  const text = (MESSAGES[lang] || MESSAGES.en)[key] || MESSAGES.en[key] || key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (vars[k] === undefined ? `{${k}}` : String(vars[k])));
}

module.exports = { language, t, MESSAGES };
