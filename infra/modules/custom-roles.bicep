// Two custom roles that give the rotator exactly what it does and nothing more.
//
// reader: what discovery reads through Azure Resource Manager. The built-in Reader also
//   covers it (its "*/read" includes all four), but Reader would let the identity read the
//   configuration of every resource in scope; these four actions cannot.
// definitionReader: with the reader role on single ACS resources only, role definitions are
//   still read at their subscription's scope (/subscriptions/<id>/providers/
//   Microsoft.Authorization/roleDefinitions/<id>), so that one action is granted there. Role
//   definitions describe roles; they hold no customer data.
// consumerChecker (only with ROTATION_CONSUMERS_ENABLED): the App Service calls that find
//   consumer sites and read which Key Vault references they resolve, as far as Microsoft's
//   operations list names them (below). Website Contributor also covers them, and the two
//   calls no listed operation names, but would let the identity change, stop and deploy
//   every site in scope.
// secretWriter: the four Key Vault data actions the rotator performs, and reading its own
//   permissions at the vault (doctor's check of them). Key Vault Secrets
//   Officer also covers them, but adds delete, backup, restore, recover and purge, which a
//   rotator that only adds versions and disables old ones never needs. Reading a
//   soft-deleted secret (GetDeletedSecret, to block an app whose name is deleted before
//   any Entra write) has no data action of its own: the REST spec asks for secrets/get,
//   the SDK docs for secrets/list, that is getSecret/action and readMetadata/action here.
targetScope = 'subscription'

@description('Short, stable token that makes role names unique in the tenant (role names are tenant-wide).')
param token string

@description('Scopes at which the reader role may be assigned (subscription ids as /subscriptions/<id>).')
param readerScopes array

@description('Scopes at which the consumer checker role may be assigned (subscriptions of consumer sites); empty: no such role.')
param consumerScopes array = []

@description('Scope at which the secret writer role may be assigned (the vault\'s resource group id).')
param vaultScope string

var readerActions = [
  'Microsoft.Communication/CommunicationServices/read' // list ACS resources in a subscription
  'Microsoft.Communication/CommunicationServices/*/read' // list their SMTP Usernames (smtpUsernames/read)
  'Microsoft.Authorization/roleAssignments/read' // which apps hold a role on an ACS resource
  'Microsoft.Authorization/roleDefinitions/read' // whether that role grants the SMTP actions
]

var definitionReaderActions = [
  'Microsoft.Authorization/roleDefinitions/read'
]

// Only actions Microsoft's Microsoft.Web operations list names (tests/operations/
// microsoft.web.txt): ARM refuses a role with any other (InvalidActionOrNotAction).
// `config/appsettings/read` is the listed read of a site's app settings, which is how ARM
// names GET {site}/config/configreferences/appsettings. No listed operation names the other
// two calls the consumer checks make: the list of a site's connection-string references
// (GET .../config/configreferences/connectionstrings) and the refresh (POST .../config/
// configreferences/appsettings/refresh). So this role cannot grant them; `doctor` tries both
// on each consumer site and says whether the identity may make them (docs/deploy.md,
// "Consumer sites": Website Contributor on a site covers both).
var consumerCheckerActions = [
  'Microsoft.Web/sites/read' // list the sites of a subscription (GET .../providers/Microsoft.Web/sites)
  'Microsoft.Web/sites/slots/read' // list each site's deployment slots (GET {site}/slots)
  'Microsoft.Web/sites/config/appsettings/read' // GET {site}/config/configreferences/appsettings
  'Microsoft.Web/sites/slots/config/appsettings/read' // the same on a slot
]

var secretWriterActions = [
  'Microsoft.Authorization/permissions/read'
]

var secretWriterDataActions = [
  'Microsoft.KeyVault/vaults/secrets/getSecret/action' // read the current password (I1 checks); read a deleted name
  'Microsoft.KeyVault/vaults/secrets/readMetadata/action' // list versions, tags, created time; read a deleted name
  'Microsoft.KeyVault/vaults/secrets/setSecret/action' // promote: write the new version
  'Microsoft.KeyVault/vaults/secrets/update/action' // retire: disable the old versions
]

resource reader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'acs-smtp-rotation-reader', token)
  properties: {
    roleName: 'ACS SMTP rotation reader (${token})'
    description: 'Lists Azure Communication Services resources, their SMTP Usernames and the role assignments on them. Read-only.'
    type: 'CustomRole'
    permissions: [
      {
        actions: readerActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: readerScopes
  }
}

resource definitionReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'acs-smtp-rotation-definition-reader', token)
  properties: {
    roleName: 'ACS SMTP rotation role definition reader (${token})'
    description: 'Reads role definitions, to tell which roles on an ACS resource grant the SMTP send actions. Read-only.'
    type: 'CustomRole'
    permissions: [
      {
        actions: definitionReaderActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: readerScopes
  }
}

resource consumerChecker 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!empty(consumerScopes)) {
  name: guid(subscription().id, 'acs-smtp-rotation-consumer-checker', token)
  properties: {
    roleName: 'ACS SMTP rotation consumer checker (${token})'
    description: 'Lists App Service sites and slots and reads which Key Vault references their app settings resolve (never setting values). Cannot change, stop or deploy a site.'
    type: 'CustomRole'
    permissions: [
      {
        actions: consumerCheckerActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: consumerScopes
  }
}

resource secretWriter 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'acs-smtp-rotation-secret-writer', token)
  properties: {
    roleName: 'ACS SMTP rotation secret writer (${token})'
    description: 'Reads secrets and their versions, writes new versions and disables old ones. Cannot delete, back up, restore or purge.'
    type: 'CustomRole'
    permissions: [
      {
        actions: secretWriterActions
        notActions: []
        dataActions: secretWriterDataActions
        notDataActions: []
      }
    ]
    assignableScopes: [
      vaultScope
    ]
  }
}

output readerGuid string = reader.name
output definitionReaderGuid string = definitionReader.name
output secretWriterGuid string = secretWriter.name
output consumerCheckerGuid string = empty(consumerScopes) ? '' : consumerChecker.name
